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
