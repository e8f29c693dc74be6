"""Stable face IDs across frames (greedy IoU matching) and per-face exponential smoothing over time.

Each track keeps its own smoothed probabilities, so two faces never share a buffer. Smoothing is
set as a time constant in seconds, not as a weight per frame, so a face looks equally steady
at 30 fps in the window, at 10 fps on a slow machine and with ``analyze --every 5``.

The overlap of two boxes is computed here only (:func:`intersection`); the detector merges
duplicate finds with it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from model.preprocess import Box


def intersection(a: Box, b: Box) -> int:
    """Area, in pixels, that two boxes share (0 when they do not overlap)."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(w, 0) * max(h, 0)


def is_one_of(box: Box, others: list[Box]) -> bool:
    """Whether ``box`` is the same face as one of ``others``: they share half of the smaller box's area
    (a box inside another counts, however different their sizes)."""
    return any(intersection(box, o) >= 0.5 * max(min(box.area, o.area), 1) for o in others)


def one_per_face(boxes: list[Box]) -> list[Box]:
    """The boxes, largest first, without those that are one face with a larger one.

    Of two boxes on one face the larger is nearly always the whole face: a Haar cascade also
    fires on parts of a face (a tilted head's chin and mouth read as a small face).
    """
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b.area, reverse=True):
        if not is_one_of(box, kept):
            kept.append(box)
    return kept


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    inter = intersection(a, b)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


class Tracked(NamedTuple):
    """One box's track after :meth:`FaceTracker.update`."""

    face_id: int
    probs: np.ndarray  # smoothed
    shown: bool  # False for a face found in this video frame only, so far


@dataclass
class _Track:
    face_id: int
    box: Box
    probs: np.ndarray
    time_s: float
    shown: bool
    missed: int = 0


class FaceTracker:
    """Matches each frame's boxes to the previous ones by IoU and smooths each face's probabilities.

    ``smoothing_s`` is the time constant of the exponential moving average (0 = off): a frame
    ``dt`` seconds after the last one gets the weight ``1 - exp(-dt / smoothing_s)``, so the
    average lags the raw probabilities by about ``smoothing_s``. A face unseen for more than
    ``max_missed`` frames is forgotten; one that comes back sooner where it was keeps its ID.

    ``update(..., show_new=False)`` (a video frame) makes a new face wait for a second frame before it is
    shown, and forgets it if the next frame does not find it where it was: a box in one video frame
    alone is nearly always a false find (a jacket's folds, one frame now and then), while a real face
    is found again near its place. It then shows one frame (~33 ms) later. A still, or the first frame
    of a source, shows every face at once.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 15, smoothing_s: float = 0.0) -> None:
        if not smoothing_s >= 0.0:
            raise ValueError("smoothing_s must be 0 or more seconds")
        self.iou_threshold, self.max_missed, self.smoothing_s = iou_threshold, max_missed, smoothing_s
        self._tracks: list[_Track] = []
        self._next_id = 1

    def past_weight(self, dt: float) -> float:
        """The share of the old average kept when a new frame comes ``dt`` seconds after the last.

        A frame with no time of its own (a repeated timestamp) counts as one frame at 30 fps.
        """
        if self.smoothing_s <= 0.0:
            return 0.0
        return math.exp(-(dt if dt > 0.0 else 1.0 / 30.0) / self.smoothing_s)

    def reset(self) -> None:
        self._tracks = []
        self._next_id = 1

    def update(self, boxes: list[Box], probs: np.ndarray, time_s: float, *, show_new: bool = True) -> list[Tracked]:
        """The track of each box, in the order of ``boxes``, seen at ``time_s``."""
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
        self._tracks = [t for t in self._tracks if t.missed <= (self.max_missed if t.shown else 0)]
        out = []
        for bi, box in enumerate(boxes):
            track = track_of.get(bi)
            if track is None:
                track = _Track(self._next_id, box, probs[bi].astype(np.float64), time_s, shown=show_new)
                self._next_id += 1
                self._tracks.append(track)
            else:
                past = self.past_weight(time_s - track.time_s)
                track.box, track.missed, track.time_s, track.shown = box, 0, time_s, True
                track.probs = past * track.probs + (1.0 - past) * probs[bi]
            out.append(Tracked(track.face_id, track.probs.copy(), track.shown))
        return out
