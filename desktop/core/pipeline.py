"""The per-frame pipeline: image -> Haar faces -> one batched CNN call -> tracked, smoothed faces.

A plain synchronous class, so the GUI worker, the headless analyser and the benchmark all
time exactly the same work. Every result carries how long each stage took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from desktop.core.classifier import Classifier
from desktop.core.detector import DetectorConfig, FaceDetector
from desktop.core.tracking import FaceTracker
from model.preprocess import DEFAULT_MARGIN, Box, faces_to_batch
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

    @property
    def total_ms(self) -> float:
        return self.detect_ms + self.preprocess_ms + self.classify_ms + self.track_ms


@dataclass(frozen=True)
class FrameResult:
    index: int  # frame number in the source
    time_s: float  # time in the source
    width: int
    height: int
    faces: tuple[Face, ...]
    timings: Timings


@dataclass(frozen=True)
class PipelineConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    margin: float = DEFAULT_MARGIN  # added around each Haar box before cropping, as in training
    smoothing: float = 0.0  # weight of the past in each face's moving average; 0 = raw probabilities
    iou_threshold: float = 0.3  # overlap needed to keep a face's ID from one frame to the next


class Pipeline:
    """``process(image)`` -> :class:`FrameResult`; call :meth:`reset` (tracking state) on a new source or a seek."""

    def __init__(
        self, classifier: Classifier, config: PipelineConfig | None = None, detector: FaceDetector | None = None
    ) -> None:
        self.classifier = classifier
        self._config = config or PipelineConfig()
        self.detector = detector or FaceDetector(self._config.detector)
        self.detector.config = self._config.detector
        self.tracker = FaceTracker(self._config.iou_threshold, smoothing=self._config.smoothing)

    @property
    def config(self) -> PipelineConfig:
        return self._config

    def configure(self, config: PipelineConfig) -> None:
        """Change settings between frames without losing the faces being tracked."""
        self._config = config
        self.detector.config = config.detector
        self.tracker.iou_threshold, self.tracker.smoothing = config.iou_threshold, config.smoothing

    def set_smoothing(self, smoothing: float) -> None:
        self.configure(replace(self._config, smoothing=smoothing))

    def set_classifier(self, classifier: Classifier) -> None:
        """Switch models (e.g. after retraining); the caller loads the new one first."""
        self.classifier = classifier
        self.reset()

    def reset(self) -> None:
        self.tracker.reset()

    def process(self, image: np.ndarray, *, index: int = 0, time_s: float = 0.0) -> FrameResult:
        t0 = time.perf_counter()
        boxes = self.detector.detect(image)
        t1 = time.perf_counter()
        batch = faces_to_batch(image, boxes, self._config.margin)
        t2 = time.perf_counter()
        probs = self.classifier.predict(batch)  # one call for every face in the frame
        t3 = time.perf_counter()
        tracked = self.tracker.update(boxes, probs)
        faces = tuple(
            Face(face_id, box, tuple(float(p) for p in face_probs))
            for box, (face_id, face_probs) in zip(boxes, tracked, strict=True)
        )
        t4 = time.perf_counter()
        timings = Timings(*(1000.0 * (b - a) for a, b in ((t0, t1), (t1, t2), (t2, t3), (t3, t4))))
        return FrameResult(index, time_s, image.shape[1], image.shape[0], faces, timings)
