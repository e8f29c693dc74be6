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


class FakeV4L2Capture:
    """A ``cv2.VideoCapture`` stand-in that behaves like a cheap USB webcam on V4L2.

    It delivers the demo photo at ``fps`` in real time; every ``drop_every``-th read fails
    (``(False, None)``: a dropped frame); after ``stall_after`` frames one read hangs for
    ``stall_s`` seconds (the USB bus stalls); after ``vanish_after`` frames every read fails
    (the camera was unplugged). Put it in place with
    ``monkeypatch.setattr("desktop.core.sources.VideoCapture", FakeV4L2Capture.factory(...))``:
    the real ``CameraSource`` and ``LatestFrameSource`` code then runs against it.
    """

    def __init__(self, index: int, *, fps: float = 30.0, drop_every: int = 0, stall_after: int | None = None,
                 stall_s: float = 0.0, vanish_after: int | None = None) -> None:  # fmt: skip
        from desktop.core.sources import DemoSource

        self.index, self.fps = index, fps
        self.drop_every, self.stall_after, self.stall_s, self.vanish_after = (
            drop_every,
            stall_after,
            stall_s,
            vanish_after,
        )
        self._demo = DemoSource(size=(640, 360))
        self.reads = self.delivered = self.dropped = 0
        self.released = False
        self._next_time = None

    @classmethod
    def factory(cls, **kwargs):
        made: list[FakeV4L2Capture] = []

        def make(index):
            made.append(cls(index, **kwargs))
            return made[-1]

        make.made = made
        return make

    def isOpened(self) -> bool:
        return not self.released

    def set(self, prop, value) -> bool:
        return True

    def get(self, prop) -> float:
        import cv2

        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        import time

        if self.released:
            raise RuntimeError("read() on a released capture: a use-after-free on a real device")
        self.reads += 1
        now = time.monotonic()
        self._next_time = (self._next_time or now) + 1.0 / self.fps
        time.sleep(max(0.0, self._next_time - now))  # frames come at the camera's rate
        if self.vanish_after is not None and self.delivered >= self.vanish_after:
            return False, None
        if self.stall_after is not None and self.delivered == self.stall_after and self.stall_s:
            time.sleep(self.stall_s)
            self.stall_s = 0.0
        if self.drop_every and self.reads % self.drop_every == 0:
            self.dropped += 1
            return False, None
        self.delivered += 1
        return True, self._demo.read().image

    def release(self) -> None:
        self.released = True


def stop_trainer(dialog) -> None:
    """Kill a Retrain dialog's trainer: a test that fails mid-run must not hang on the "Stop training?" question
    when its widgets are closed."""
    if dialog is not None and dialog.process is not None:
        dialog.process.kill()
        dialog.process.waitForFinished(5000)
