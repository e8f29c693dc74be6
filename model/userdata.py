"""Where user data lives: trained runs, logs, settings. Never inside the install folder.

Matches Qt's ``QStandardPaths.AppDataLocation`` for organisation and application
"EmotionLens", so the app and ``train_emotion.py`` agree without importing Qt.
``EMOTION_LENS_DATA_DIR`` overrides it (tests, portable installs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "EmotionLens"


def user_data_dir() -> Path:
    override = os.environ.get("EMOTION_LENS_DATA_DIR")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / APP_NAME / APP_NAME


def runs_dir() -> Path:
    return user_data_dir() / "runs"
