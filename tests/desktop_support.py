"""Helpers shared by the desktop tests: paths to real media, the written video's shape, a fixed classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.spec import NUM_CLASSES

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"

#: The written test video: the demo source's panned astronaut, 640x480 at 30 fps.
VIDEO_FRAMES, VIDEO_SIZE = 45, (640, 480)


def shared_media(name: str) -> Path:
    """A file from ../shared/media (never committed); skips the test when it is absent."""
    path = MEDIA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the real test media live in ../shared/media beside the repository")
    return path


class FixedClassifier:
    """Returns the same probabilities for every face and records each call's batch size."""

    name = "fixed.keras"
    device = "test"
    model_path = None
    requested_device = "auto"
    warning = None

    def __init__(self, top: int = 3) -> None:
        self.probs = np.full(NUM_CLASSES, 0.1 / (NUM_CLASSES - 1), np.float32)
        self.probs[top] = 0.9
        self.batch_sizes: list[int] = []

    def load(self) -> None:
        pass

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(batch))
        return np.tile(self.probs, (len(batch), 1))
