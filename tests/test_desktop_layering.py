"""The architecture's arrows: model and desktop.core load no Qt; nothing loads TensorFlow before the model does."""

from __future__ import annotations

import subprocess
import sys

from desktop_support import REPO

CORE = "model, model.spec, model.preprocess, model.checkpoint, model.data, model.inference, " + ", ".join(
    f"desktop.core.{m}" for m in ("sources", "detector", "classifier", "tracking", "pipeline", "annotate", "export")
)


def _loaded_after(imports: str) -> set[str]:
    code = f"import sys; import {imports}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_model_and_core_load_neither_qt_nor_tensorflow():
    loaded = _loaded_after(CORE + ", desktop.core.analyze")
    assert "cv2" in loaded and "desktop" in loaded  # the imports really happened
    assert "PySide6" not in loaded
    assert "tensorflow" not in loaded and "keras" not in loaded


def test_ui_does_not_import_tensorflow():
    loaded = _loaded_after("desktop.ui.main_window, desktop.ui.app")
    assert "PySide6" in loaded
    assert "tensorflow" not in loaded and "keras" not in loaded
