"""The architecture's arrows: model and desktop.core load no Qt; nothing loads TensorFlow before the model does."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

from desktop_support import REPO

#: Modules that import Keras at their top level on purpose: the network definition is only imported by
#: training and conversion code, after TensorFlow is wanted anyway (the app builds no network).
LOADS_KERAS = {"model.network"}


def _modules(package: str) -> list[str]:
    """``package`` and every module under it, found on disk: a new module is covered without a list to update."""
    found = pkgutil.walk_packages([str(REPO.joinpath(*package.split(".")))], prefix=package + ".")
    return [package, *sorted(m.name for m in found)]


CORE = ", ".join(m for m in _modules("model") + _modules("desktop.core") if m not in LOADS_KERAS)


def _loaded_after(imports: str) -> set[str]:
    code = f"import sys; import {imports}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_model_and_core_load_neither_qt_nor_tensorflow():
    assert "desktop.core.analyze" in CORE and "model.preprocess" in CORE  # the walk found the modules
    loaded = _loaded_after(CORE)
    assert "cv2" in loaded and "desktop" in loaded  # the imports really happened
    assert "PySide6" not in loaded
    assert "tensorflow" not in loaded and "keras" not in loaded


def test_ui_does_not_import_tensorflow():
    loaded = _loaded_after("desktop.ui.main_window, desktop.ui.app")
    assert "PySide6" in loaded
    assert "tensorflow" not in loaded and "keras" not in loaded
