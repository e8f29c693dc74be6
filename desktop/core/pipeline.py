"""The per-frame pipeline: image -> Haar faces -> one batched CNN call -> tracked, smoothed faces.

A plain synchronous class, so the GUI worker, the headless analyser and the benchmark all
time exactly the same work. Every result carries how long each stage took.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from desktop.core.classifier import Classifier
from desktop.core.detector import DetectorConfig, FaceDetector
from desktop.core.tracking import FaceTracker, is_one_of, one_per_face
from model.preprocess import DEFAULT_MARGIN, Box, faces_to_batch, to_gray
from model.saliency import Saliency, occlusion_map
from model.spec import LABEL_KEYS, LABELS


@dataclass(frozen=True)
class Face:
    face_id: int  # stable across frames while the face is tracked
    box: Box  # the Haar box in frame pixels
    probs: tuple[float, ...]  # 7 probabilities in LABELS order (smoothed when smoothing is on), full precision

    @property
    def top(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def emotion(self) -> str:
        return LABELS[self.top]

    @property
    def emotion_key(self) -> str:
        return LABEL_KEYS[self.top]

    @property
    def confidence(self) -> float:
        return self.probs[self.top]


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in each stage of one :meth:`Pipeline.process` call."""

    detect_ms: float
    preprocess_ms: float
    classify_ms: float
    track_ms: float
    explain_ms: float = 0.0  # occlusion maps for the faces asked to be explained (0 on most frames)

    @property
    def total_ms(self) -> float:
        return self.detect_ms + self.preprocess_ms + self.classify_ms + self.track_ms + self.explain_ms


@dataclass(frozen=True)
class Explanation:
    """Why a tracked face got its label: the occlusion map of the face as the model saw it in this frame."""

    face_id: int
    box: Box  # the Haar box it was computed on; the map covers that box plus the pipeline's margin
    saliency: Saliency


@dataclass(frozen=True)
class FrameResult:
    index: int  # frame number in the source
    time_s: float  # time in the source
    width: int
    height: int
    faces: tuple[Face, ...]
    timings: Timings
    explanations: tuple[Explanation, ...] = ()  # for the faces asked for in ``process(explain=...)``


#: Seconds between two maps of the face being explained: ~5 a second, each ~25 forward passes.
EXPLAIN_EVERY_S = 0.18

#: Frames closer than this are one video: in a stretch of them without a face, each gets one fallback look.
SPREAD_LOOKS_WITHIN_S = 0.1

#: Default smoothing time constant, chosen with benchmarks/smoothing_bench.py on a real clip (see the README).
SMOOTHING_S = 0.2


@dataclass(frozen=True)
class PipelineConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    margin: float = DEFAULT_MARGIN  # added around each Haar box before cropping (why 0.05: model.preprocess)
    smoothing_s: float = SMOOTHING_S  # time constant of each face's moving average, in seconds; 0 = raw
    iou_threshold: float = 0.3  # overlap needed to keep a face's ID from one frame to the next
    full_scan_every: int = 10  # between whole-frame scans (a third of a second at 30 fps), look only near known faces


def _found_whole(face: Box, boxes: list[Box]) -> bool:
    """Whether one of ``boxes`` is ``face`` at half its area or more (smaller is a part of it, e.g. a chin)."""
    return any(b.area >= face.area / 2 and is_one_of(face, [b]) for b in boxes)


class Pipeline:
    """``process(image)`` -> :class:`FrameResult`; call :meth:`reset` (tracking state) on a new source or a seek."""

    def __init__(
        self, classifier: Classifier, config: PipelineConfig | None = None, detector: FaceDetector | None = None
    ) -> None:
        self.classifier = classifier
        self._config = config or PipelineConfig()
        self.detector = detector or FaceDetector(self._config.detector)
        self.detector.config = self._config.detector
        self.tracker = FaceTracker(self._config.iou_threshold, smoothing_s=self._config.smoothing_s)
        self._previous: list[Box] = []  # the faces found in the last frame
        self._since_scan = 0  # frames since the last whole-frame scan
        self._turn = 0  # which fallback look the next scan that asks only one asks
        self._beside_turn = 0  # which fallback look next looks beside the known faces (look_beside)
        self._last_time_s: float | None = None  # the last frame's time since the source started or was reset
        self._inputs: dict[int, np.ndarray] = {}  # the model input of each face shown in the last frame
        self.full_scans = 0  # how many frames needed a whole-frame scan (for benchmarks and tests)

    @property
    def config(self) -> PipelineConfig:
        return self._config

    def configure(self, config: PipelineConfig) -> None:
        """Change settings between frames without losing the faces being tracked."""
        if config.detector != self._config.detector:
            self._previous = []  # new detector settings: scan the whole frame next
        self._config = config
        self.detector.config = config.detector
        self.tracker.iou_threshold, self.tracker.smoothing_s = config.iou_threshold, config.smoothing_s

    def set_classifier(self, classifier: Classifier) -> None:
        """Switch models (e.g. after retraining); the caller loads the new one first."""
        self.classifier = classifier
        self.reset()

    def reset(self) -> None:
        self.tracker.reset()
        self._previous, self._since_scan, self._last_time_s, self._inputs = [], 0, None, {}

    def face_input(self, face_id: int) -> np.ndarray | None:
        """The model input (48x48x1, as classified) of face ``face_id`` in the last frame; None if not shown there.

        For a caller that explains a face on another thread (the app), instead of ``process(explain=...)``.
        """
        return self._inputs.get(face_id)

    def _in_video(self, time_s: float) -> bool:
        """Whether this frame follows the last one closely enough (``SPREAD_LOOKS_WITHIN_S``) to be one video."""
        last = self._last_time_s
        return last is not None and 0 < time_s - last < SPREAD_LOOKS_WITHIN_S

    def _detect(self, gray: np.ndarray, video: bool) -> list[Box]:
        """Faces near the last ones, with a whole-frame scan every ``full_scan_every`` frames.

        The whole frame is also scanned whenever a face is lost near its old place or
        there was none, so recall is never below scanning every frame for a face that
        stays put, and a new face waits at most ``full_scan_every - 1`` frames.

        Asking every fallback look (see :class:`FaceDetector`) in a whole-frame scan costs
        eight scans. In a video (frames within ``SPREAD_LOOKS_WITHIN_S``), every scan after
        the first asks only one fallback, in turn, where the first cascade finds nothing: a face
        only a fallback finds is found at most six frames later. Beside known faces, which the
        first cascade keeps finding, one fallback look in turn scans the frame halfway between
        two scheduled scans (a frame that otherwise only looks near the known faces, so the cost
        does not pile onto a scan's): a head tilted or turned away beside a frontal face is found
        within seven such frames. Known faces
        are looked for where they were too, with every look (cheap there), so a face found
        tilted or in profile is kept; of a scan's box and a known face's that are one face,
        the larger stays (a look may find only a tilted head's chin and mouth).
        Stills, the first frame of a video and images a second apart get every look.
        """
        every = self._config.full_scan_every
        near: list[Box] | None = None  # the known faces found where they were, if looked for
        if self._previous and every > 1 and self._since_scan < every - 1:
            near = self.detector.detect_near(gray, self._previous)
            if len(near) >= len(self._previous):
                self._since_scan += 1
                if video and self._since_scan == every // 2:  # halfway between two scans, a cheap frame
                    near += self.detector.look_beside(gray, near, self._beside_turn)
                    self._beside_turn += 1
                return near
        self._since_scan = 0
        self.full_scans += 1
        if video:
            boxes = self.detector.detect(gray, fallback=self._turn)
            self._turn += 1
        else:
            boxes = self.detector.detect(gray)
        if video and near is None and self._previous:  # a scheduled scan: the known faces it missed, or found a part of
            near = self.detector.detect_near(gray, [p for p in self._previous if not _found_whole(p, boxes)])
        return one_per_face(boxes + (near or []))

    def process(
        self,
        image: np.ndarray,
        *,
        index: int = 0,
        time_s: float = 0.0,
        explain: Collection[int] | Literal["all"] = (),
    ) -> FrameResult:
        """Detect, classify and track the faces of one frame; also explain those whose IDs are in ``explain``.

        An explanation costs ~25 forward passes, so callers ask for it a few times a second, not every frame.
        """
        t0 = time.perf_counter()
        gray = to_gray(image)  # once per frame, shared by detection and cropping
        video = self._in_video(time_s)
        boxes = self._detect(gray, video)
        self._previous, self._last_time_s = boxes, time_s
        t1 = time.perf_counter()
        batch = faces_to_batch(gray, boxes, self._config.margin)
        t2 = time.perf_counter()
        probs = self.classifier.predict(batch)  # one call for every face in the frame
        t3 = time.perf_counter()
        tracked = self.tracker.update(boxes, probs, time_s, show_new=not video)
        shown = [
            (k, Face(track.face_id, box, tuple(float(p) for p in track.probs)))
            for k, (box, track) in enumerate(zip(boxes, tracked, strict=True))
            if track.shown
        ]
        faces = tuple(face for _, face in shown)
        self._inputs = {face.face_id: batch[k] for k, face in shown}
        t4 = time.perf_counter()
        explanations = tuple(
            Explanation(face.face_id, face.box, occlusion_map(self.classifier.predict, batch[k]))
            for k, face in shown
            if explain == "all" or face.face_id in explain
        )
        t5 = time.perf_counter()
        spans = ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5))
        timings = Timings(*(1000.0 * (b - a) for a, b in spans))
        return FrameResult(index, time_s, image.shape[1], image.shape[0], faces, timings, explanations)
