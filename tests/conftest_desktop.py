"""Fixtures shared by the desktop tests; they load it with ``pytest_plugins = ["conftest_desktop"]``.

Qt-free, so importing it loads neither PySide6 nor TensorFlow. Plain helpers live in ``desktop_support``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from desktop_support import VIDEO_FRAMES, VIDEO_SIZE

from desktop.core.sources import DemoSource


@pytest.fixture(scope="session")
def astronaut_video(tmp_path_factory) -> Path:
    """A real video file written with OpenCV from the public-domain astronaut photo."""
    path = tmp_path_factory.mktemp("media") / "astronaut.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, VIDEO_SIZE)
    assert writer.isOpened()
    with DemoSource(size=VIDEO_SIZE) as demo:
        for _ in range(VIDEO_FRAMES):
            writer.write(demo.read().image)
    writer.release()
    assert path.stat().st_size > 10_000
    return path


@pytest.fixture(scope="session")
def real_classifier():
    """The shipped Keras model, loaded and warmed up once for the whole session."""
    from desktop.core.classifier import EmotionClassifier

    classifier = EmotionClassifier(device="cpu")
    classifier.load()
    return classifier


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def open_window(qtbot, settings):
    """``open_window(classifier, source)``: a real main window, shown; closed (and its thread checked) afterwards."""
    from desktop.ui.main_window import MainWindow

    windows = []

    def make(classifier, source):
        window = MainWindow(classifier, source=source, settings=settings)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.host.thread.isRunning()
