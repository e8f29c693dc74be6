"""Haar-cascade face detection on a downscaled gray frame."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from desktop.core.resources import CASCADE, resource_path
from model.preprocess import Box, to_gray

log = logging.getLogger(__name__)

#: The cascade's own window: a face smaller than this after downscaling cannot be found.
_CASCADE_WINDOW = 24


class DetectorError(Exception):
    """The face detector cannot be set up (a missing or unreadable cascade file)."""


@dataclass(frozen=True)
class DetectorConfig:
    scale_factor: float = 1.1  # step between detection scales; smaller finds more, slower
    min_neighbors: int = 5  # overlapping hits needed to keep a face; higher means fewer false faces
    min_face_size: int = 48  # smallest face to report, in full-frame pixels
    detect_width: int = 320  # frames wider than this are shrunk before detecting (see FaceDetector)

    def __post_init__(self) -> None:
        if self.scale_factor <= 1.0:
            raise ValueError("scale_factor must be greater than 1")
        if self.min_neighbors < 0 or self.min_face_size < 1 or self.detect_width < _CASCADE_WINDOW:
            raise ValueError("min_neighbors must be >= 0, min_face_size >= 1 and detect_width >= 24")


class FaceDetector:
    """Finds frontal faces; boxes come back in full-frame coordinates, largest first.

    Detection runs on a copy shrunk to ``detect_width``, but never so far that a face of
    ``min_face_size`` falls below the cascade's 24-pixel window: the speed-up costs no recall
    for the faces the user asked for.
    """

    def __init__(self, config: DetectorConfig | None = None, cascade_path: Path | None = None) -> None:
        path = cascade_path or resource_path(CASCADE)
        try:
            self._cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError):  # OpenCV raises (wrapped) for a malformed XML file
            self._cascade = cv2.CascadeClassifier()
        if self._cascade.empty():
            raise DetectorError(f"{path}: cannot load the Haar cascade (missing or corrupt file)")
        self.config = config or DetectorConfig()

    def detect(self, image: np.ndarray) -> list[Box]:
        gray = to_gray(image)
        h, w = gray.shape
        cfg = self.config
        scale = min(1.0, max(cfg.detect_width / w, _CASCADE_WINDOW / cfg.min_face_size))
        small = (
            cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else gray
        )
        min_size = max(_CASCADE_WINDOW, round(cfg.min_face_size * scale))
        found = self._cascade.detectMultiScale(
            small, scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors, minSize=(min_size, min_size)
        )
        boxes = [Box(*(round(v / scale) for v in rect)) for rect in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: b.area, reverse=True)
