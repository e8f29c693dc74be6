"""Where frames come from: a camera, a video file, still images, the demo or a synthetic source.

Everything is opened through :func:`open_source`, so the GUI, the analyser and the tests
handle every kind the same way. Failures raise :class:`SourceError` with a message a user
can act on; a frame that fails to decode in the middle of a file is counted and skipped.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from desktop.core.resources import DEMO_IMAGE, resource_path
from model.data import IMAGE_SUFFIXES

log = logging.getLogger(__name__)


class SourceError(Exception):
    """A source that cannot be opened or stopped delivering frames."""


@dataclass(frozen=True)
class Frame:
    """One BGR ``uint8`` image and where it sits in its source."""

    image: np.ndarray
    index: int  # frame number in the source (0-based)
    time_s: float  # index / fps for files and generated sources, seconds since opening for a camera
    #: ``time.monotonic()`` when the frame was read (decoded, or grabbed by a camera reader thread):
    #: where the GUI's capture-to-paint latency starts.
    captured: float = field(default_factory=time.monotonic, compare=False)


@dataclass(frozen=True)
class SourceInfo:
    name: str  # what the user picked, shown in the status bar
    kind: str  # camera | video | images | demo | synthetic
    fps: float  # the rate to play it at
    frame_count: int | None  # None for endless sources
    live: bool = False  # frames arrive in real time (a camera): stale frames are worthless
    spec: str = ""  # what open_source() takes to open it again

    @property
    def seekable(self) -> bool:
        return self.frame_count is not None and not self.live

    @property
    def still(self) -> bool:
        """One photo: a frame rate means nothing for it."""
        return self.kind == "images" and self.frame_count == 1


class FrameSource:
    """Base class: ``read()`` returns the next :class:`Frame`, or ``None`` at the end."""

    info: SourceInfo
    #: Frames that failed to decode and were skipped.
    decode_errors: int = 0

    def read(self) -> Frame | None:
        raise NotImplementedError

    def seek(self, index: int) -> None:
        raise SourceError(f"{self.info.name}: cannot seek in this source")

    def skip(self, count: int) -> None:
        """Drop ``count`` frames (to catch up with real time)."""
        for _ in range(count):
            if self.read() is None:
                return

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if not path.is_file():
        raise SourceError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty")


class VideoFileSource(FrameSource):
    def __init__(self, path: Path) -> None:
        _check_file(path)
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise SourceError(f"{path}: cannot open this video (corrupt or unsupported format)")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.info = SourceInfo(
            path.name, "video", fps if 0 < fps < 1000 else 30.0, count if count > 0 else None, spec=str(path.resolve())
        )
        self._path = path
        self._next = 0
        self._pending = self._read_image()
        if self._pending is None:
            self.close()
            raise SourceError(f"{path}: no frame could be decoded (corrupt or unsupported video)")

    def _read_image(self) -> np.ndarray | None:
        """The next decodable image; failures followed by a good frame count as decode errors."""
        failures = 0
        while failures < 50:
            ok, image = self._cap.read()
            if ok and image is not None:
                if failures:
                    log.warning("%s: skipped %d frames that failed to decode", self._path, failures)
                    self.decode_errors += failures
                    self._next += failures
                return image
            failures += 1
            if self.info.frame_count is None or self._next + failures >= self.info.frame_count:
                return None  # the end of the file, not a bad frame
        return None

    def read(self) -> Frame | None:
        image, self._pending = (self._pending, None) if self._pending is not None else (self._read_image(), None)
        if image is None:
            return None
        frame = Frame(image, self._next, self._next / self.info.fps)
        self._next += 1
        return frame

    def seek(self, index: int) -> None:
        last = (self.info.frame_count or 1) - 1
        index = min(max(int(index), 0), last)
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        self._next, self._pending = index, None

    def skip(self, count: int) -> None:
        if self._pending is not None and count > 0:
            self._pending, count, self._next = None, count - 1, self._next + 1
        for _ in range(count):
            if not self._cap.grab():
                return
            self._next += 1

    def close(self) -> None:
        self._cap.release()


#: What opens a camera. Tests put a fake V4L2 device here (one that stalls, drops frames and disappears),
#: so the real :class:`CameraSource` and :class:`LatestFrameSource` code runs against it.
VideoCapture = cv2.VideoCapture


class CameraSource(FrameSource):
    """A webcam by index. A few missed frames are tolerated; a run of them means it is gone."""

    MAX_MISSES = 10

    def __init__(self, index: int) -> None:
        self._index = index
        self._cap = VideoCapture(index)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"camera {index}: not found, or in use by another application")
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.info = SourceInfo(f"camera {index}", "camera", fps if 0 < fps < 240 else 30.0, None, True, str(index))
        self._count = 0
        self._t0 = time.monotonic()

    def read(self) -> Frame | None:
        for _ in range(self.MAX_MISSES):
            ok, image = self._cap.read()
            if ok and image is not None:
                frame = Frame(image, self._count, time.monotonic() - self._t0)
                self._count += 1
                return frame
            time.sleep(0.05)
        raise SourceError(f"camera {self._index} stopped sending frames (unplugged?)")

    def close(self) -> None:
        self._cap.release()


class ImageSource(FrameSource):
    """One image or the images of a folder (sorted by name), shown at one per second."""

    def __init__(self, paths: Sequence[Path], name: str, spec: str = "") -> None:
        if not paths:
            raise SourceError(f"{name}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
        self._paths = list(paths)
        self.info = SourceInfo(name, "images", 1.0, len(self._paths), spec=spec)
        self._next = 0
        if len(self._paths) == 1 and self._load(self._paths[0]) is None:
            raise SourceError(f"{self._paths[0]}: cannot read this image (corrupt or unsupported format)")

    @classmethod
    def from_path(cls, path: Path) -> ImageSource:
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            return cls(images, str(path), str(path.resolve()))
        _check_file(path)
        return cls([path], path.name, str(path.resolve()))

    @staticmethod
    def _load(path: Path) -> np.ndarray | None:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return image if image is not None and image.size else None

    def read(self) -> Frame | None:
        while self._next < len(self._paths):
            index = self._next
            self._next += 1
            image = self._load(self._paths[index])
            if image is not None:
                return Frame(image, index, float(index))
            log.warning("%s: cannot read this image; skipped", self._paths[index])
            self.decode_errors += 1
        return None

    def seek(self, index: int) -> None:
        self._next = min(max(int(index), 0), len(self._paths) - 1)

    def skip(self, count: int) -> None:
        self._next += count


class DemoSource(FrameSource):
    """The bundled public-domain astronaut photo, slowly panned and zoomed: a face to look at without a webcam."""

    def __init__(self, size: tuple[int, int] = (640, 480), fps: float = 30.0) -> None:
        path = resource_path(DEMO_IMAGE)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{path}: the demo image is missing or unreadable")
        self._image, self._size = image, size
        self.info = SourceInfo("demo", "demo", fps, None, spec="demo")
        self._next = 0

    def read(self) -> Frame | None:
        t = self._next / self.info.fps
        w, h = self._size
        scale = 1.7 * (1.0 + 0.06 * math.sin(2 * math.pi * t / 11))
        cx = 215 + 24 * math.sin(2 * math.pi * t / 9)  # view centre in the 512x512 photo (face near 225, 115)
        # The face (y = 115 in the photo) sits at 40 % of the frame's height, whole, whatever the size.
        cy = 115 + 0.1 * h / scale + 12 * math.sin(2 * math.pi * t / 7)
        matrix = np.float32([[scale, 0, w / 2 - scale * cx], [0, scale, h / 2 - scale * cy]])
        image = cv2.warpAffine(self._image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame = Frame(image, self._next, t)
        self._next += 1
        return frame

    def skip(self, count: int) -> None:
        self._next += count


class SyntheticSource(FrameSource):
    """A stand-in camera for tests: cycles through ``frames`` (a moving square by default).

    ``count`` ends it after that many frames; ``fail_after`` makes it raise the way an
    unplugged camera does, after that many frames.
    """

    def __init__(
        self,
        frames: Sequence[np.ndarray] | None = None,
        *,
        count: int | None = None,
        fps: float = 30.0,
        fail_after: int | None = None,
        live: bool = False,
    ) -> None:
        self._frames = list(frames) if frames is not None else None
        self._count, self._fail_after = count, fail_after
        self.info = SourceInfo("synthetic", "synthetic", fps, count, live=live)
        self._next = 0
        self._t0 = time.monotonic()

    def read(self) -> Frame | None:
        if self.info.live:  # like a camera: a frame every 1/fps seconds, however fast we ask
            time.sleep(max(0.0, self._t0 + self._next / self.info.fps - time.monotonic()))
        if self._fail_after is not None and self._next >= self._fail_after:
            raise SourceError("synthetic camera stopped sending frames (unplugged?)")
        if self._count is not None and self._next >= self._count:
            return None
        if self._frames:
            image = self._frames[self._next % len(self._frames)]
        else:
            image = np.full((240, 320, 3), 40, np.uint8)
            x = 20 + (self._next * 4) % 240
            cv2.rectangle(image, (x, 80), (x + 60, 160), (200, 200, 200), -1)
        frame = Frame(image, self._next, self._next / self.info.fps)
        self._next += 1
        return frame

    def seek(self, index: int) -> None:
        if self._count is None:
            super().seek(index)
        self._next = min(max(int(index), 0), self._count - 1)

    def skip(self, count: int) -> None:
        self._next += count


class LatestFrameSource(FrameSource):
    """Reads a live source on its own thread and keeps only the newest frame.

    A camera delivers frames whether or not we keep up; reading it on the processing
    thread lets OpenCV's buffer fill with old frames, so latency grows. Here the reader
    never waits for the consumer, and ``read()`` returns the newest frame not yet seen.

    The reader thread owns the wrapped source until it ends: it alone releases it, after its
    last ``read()`` has returned. :meth:`close` only asks it to stop, so a camera that stalls
    inside ``read()`` is never released under the read (a use-after-free in the capture).
    """

    def __init__(self, source: FrameSource, timeout_s: float = 3.0) -> None:
        self._source, self._timeout = source, timeout_s
        self.info = source.info
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._error: SourceError | None = None
        self._ended = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"read {source.info.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._read_until_stopped()
        finally:
            self._source.close()  # here, on the thread that reads it, once no read() is running

    def _read_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._source.read()
            except SourceError as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                if frame is None:
                    self._ended = True
                self._frame = frame
                self._cond.notify_all()
            if frame is None:
                return

    def read(self) -> Frame | None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._frame or self._error or self._ended, self._timeout):
                raise SourceError(f"{self.info.name}: no frame for {self._timeout:g} s (unplugged?)")
            if self._frame is None and self._error is not None:
                raise self._error
            frame, self._frame = self._frame, None
            return frame

    @property
    def decode_errors(self) -> int:  # type: ignore[override]
        return self._source.decode_errors

    def close(self, timeout_s: float = 2.0) -> None:
        """Ask the reader to stop and wait up to ``timeout_s`` for it to release the source.

        A reader stuck in a stalled camera's ``read()`` is left to finish it and release the
        camera then; it is a daemon thread, so it never keeps the app from quitting.
        """
        self._stop.set()
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            log.warning("%s: the camera is not answering; it will be released when its read returns", self.info.name)


def open_source(spec: str | int | Path) -> FrameSource:
    """Open ``demo``, ``synthetic``, a camera index, or a video file, image or folder of images."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec))
    text = str(spec).strip()
    if not text:
        raise SourceError("no source given")
    if text == "demo":
        return DemoSource()
    if text == "synthetic":
        return SyntheticSource()
    path = Path(text).expanduser()
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource.from_path(path)
    return VideoFileSource(path)


def list_cameras(max_index: int = 4, in_use: int | None = None) -> list[int]:
    """Indices of the cameras that open. Each try can take a moment; don't call this per frame.

    ``in_use`` is listed without being opened: opening a camera that is streaming can disturb it.
    """
    if sys.platform.startswith("linux"):  # probe only the devices that exist
        v4l = Path("/sys/class/video4linux")
        names = [p.name[5:] for p in v4l.glob("video*")] if v4l.is_dir() else []
        candidates = sorted(int(n) for n in names if n.isdigit())
    else:
        candidates = list(range(max_index + 1))
    found = [] if in_use is None else [in_use]
    for index in (i for i in candidates if i != in_use):
        cap = VideoCapture(index)
        if cap.isOpened():
            found.append(index)
        cap.release()
    return sorted(found)
