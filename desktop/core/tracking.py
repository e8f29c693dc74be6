"""Stable face IDs across frames (greedy IoU matching) and per-face exponential smoothing.

Each track keeps its own smoothed probabilities, so two faces never share a buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.preprocess import Box


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(w, 0) * max(h, 0)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    face_id: int
    box: Box
    probs: np.ndarray
    missed: int = 0


class FaceTracker:
    """Matches each frame's boxes to the previous ones by IoU and smooths each face's probabilities.

    ``smoothing`` is the weight of the past in the exponential moving average (0 = off,
    0.8 = slow and steady). A face unseen for more than ``max_missed`` frames is forgotten;
    one that comes back sooner where it was keeps its ID.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 15, smoothing: float = 0.0) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError("smoothing must be in [0, 1)")
        self.iou_threshold, self.max_missed, self.smoothing = iou_threshold, max_missed, smoothing
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        self._tracks = []
        self._next_id = 1

    def update(self, boxes: list[Box], probs: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """``(face_id, probabilities)`` for each box, in the order of ``boxes``."""
        pairs = sorted(
            ((iou(t.box, b), ti, bi) for ti, t in enumerate(self._tracks) for bi, b in enumerate(boxes)), reverse=True
        )
        track_of: dict[int, _Track] = {}
        used: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in used or bi in track_of:
                continue
            used.add(ti)
            track_of[bi] = self._tracks[ti]
        for ti, track in enumerate(self._tracks):
            if ti not in used:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        out = []
        for bi, box in enumerate(boxes):
            track = track_of.get(bi)
            if track is None:
                track = _Track(self._next_id, box, probs[bi].astype(np.float64))
                self._next_id += 1
                self._tracks.append(track)
            else:
                s = self.smoothing
                track.box, track.missed = box, 0
                track.probs = s * track.probs + (1.0 - s) * probs[bi]
            out.append((track.face_id, track.probs.copy()))
        return out
