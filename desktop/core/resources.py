"""Finding bundled files (Haar cascade, demo image) in a checkout and in a PyInstaller build."""

from __future__ import annotations

import sys
from pathlib import Path

#: The repository root in a checkout; PyInstaller unpacks bundled data under ``sys._MEIPASS``.
_ROOT = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[2]))

CASCADE = "assets/haarcascade_frontalface_default.xml"
#: Tried where CASCADE finds no face (see desktop.core.detector.FaceDetector).
SECOND_CASCADE = "assets/haarcascade_frontalface_alt2.xml"
#: Tried, on the frame and its mirror image, where both frontal cascades find no face.
PROFILE_CASCADE = "assets/haarcascade_profileface.xml"
DEMO_IMAGE = "assets/astronaut.png"


def resource_path(relative: str) -> Path:
    """Absolute path of a file shipped with the app, given relative to the project root."""
    return _ROOT / relative
