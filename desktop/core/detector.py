"""Haar-cascade face detection on a downscaled gray frame."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from desktop.core.resources import CASCADE, PROFILE_CASCADE, SECOND_CASCADE, resource_path
from desktop.core.tracking import is_one_of, one_per_face
from model.preprocess import Box, to_gray

log = logging.getLogger(__name__)

#: The cascade's own window: a face smaller than this after downscaling cannot be found.
_CASCADE_WINDOW = 24
#: Degrees the frame is turned for the tilted looks: the frontal cascades miss heads tilted by more than ~15.
_TILT = 20.0
_STEEP_TILT = 30.0  # with every neighbour needed: with two fewer, 2 false boxes on the 48 faceless photos
#: Face size, in pixels, at which :meth:`FaceDetector.detect_near` looks for a known face.
_NEAR_FACE = 3 * _CASCADE_WINDOW


class DetectorError(Exception):
    """The face detector cannot be set up (a missing or unreadable cascade file)."""


@dataclass(frozen=True)
class DetectorConfig:
    scale_factor: float = 1.1  # step between detection scales; smaller finds more, slower
    min_neighbors: int = 5  # overlapping hits needed to keep a face; higher means fewer false faces
    min_face_size: int = 48  # smallest face to report, in full-frame pixels
    detect_width: int = 320  # frames wider than this are shrunk before detecting (see FaceDetector)
    fallback_looks: bool = True  # where the main cascade finds no face: alt2, profiles, turned (see FaceDetector)

    def __post_init__(self) -> None:
        if self.scale_factor <= 1.0:
            raise ValueError("scale_factor must be greater than 1")
        if self.min_neighbors < 0 or self.min_face_size < 1 or self.detect_width < _CASCADE_WINDOW:
            raise ValueError("min_neighbors must be >= 0, min_face_size >= 1 and detect_width >= 24")


class FaceDetector:
    """Finds faces; boxes come back in full-frame coordinates, largest first.

    Detection runs on a copy shrunk to ``detect_width``, but never so far that a face of
    ``min_face_size`` falls below the cascade's 24-pixel window: the speed-up costs no recall
    for the faces the user asked for.

    Other cascades take a look after the main one (``fallback_looks``): in a whole-frame scan of a still
    each look keeps the faces that the looks before it did not find, so a face only a fallback sees is
    found beside frontal ones; near a face being tracked the first look that finds it wins. The looks:

    1. OpenCV's ``alt2``, whose more numerous stages make each hit likelier a face, so it keeps
       a face with two fewer overlapping hits. It finds faces tilted down or turned a little.
    2. OpenCV's profile cascade, on the frame and on its mirror image (it knows faces turned one
       way only), also with two fewer hits, for faces at least twice ``min_face_size`` in a
       whole-frame scan: a face turned away is usually a close one, and the bigger windows cost
       a quarter of a full profile scan.
    3. ``alt2`` again, on the frame turned by 20 degrees one way and then the other, with one
       fewer neighbour (with two fewer, a box flashed on a shirt in 10 of 600 frames of a faceless
       clip; now 1): the frontal cascades lose a head tilted sideways by more than ~15 degrees.
       Such a face's box carries the angle, and it is cut upright (:class:`~model.preprocess.Box`).
    4. ``alt2`` on the frame turned by 30 degrees each way, with all its neighbours, for heads
       tilted further.

    With the shipped model, ``evaluate --detect`` finds 90.9 % of PublicTest (75.4 with the first
    cascade alone, 80.9 with ``alt2``, 83.7 with the profiles too) and 97.9 % of faces-in-the-wild
    (95.1, 96.1, 97.4); on 48 faceless photos where the first cascade finds nothing, ``alt2`` adds
    1 false box and the other looks none. A still costs eight scans; a video spreads the seven
    fallbacks over its frames, one at a time (``detect(fallback=...)``, :meth:`look_beside`).
    """

    def __init__(
        self,
        config: DetectorConfig | None = None,
        cascade_path: Path | None = None,
        second_cascade_path: Path | None = None,
        profile_cascade_path: Path | None = None,
    ) -> None:
        first = _load_cascade(cascade_path or resource_path(CASCADE))
        second = _load_cascade(second_cascade_path or resource_path(SECOND_CASCADE))
        profile = _load_cascade(profile_cascade_path or resource_path(PROFILE_CASCADE))
        self._looks = (
            _Look(first, fewer_neighbours=0),
            _Look(second),
            _Look(profile, size_factor=2),
            _Look(profile, size_factor=2, mirrored=True),
            _Look(second, fewer_neighbours=1, angle=_TILT),
            _Look(second, fewer_neighbours=1, angle=-_TILT),
            _Look(second, fewer_neighbours=0, angle=_STEEP_TILT),
            _Look(second, fewer_neighbours=0, angle=-_STEEP_TILT),
        )
        self.config = config or DetectorConfig()

    def _shrink(self, gray: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = gray.shape
        cfg = self.config
        scale = min(1.0, max(cfg.detect_width / w, _CASCADE_WINDOW / cfg.min_face_size))
        if scale < 1:
            gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        return gray, scale

    def detect(self, image: np.ndarray, fallback: int | None = None) -> list[Box]:
        """Scan the whole frame with every look, each keeping the faces that the looks before it did not find,
        so a face only a fallback finds (a head tilted or turned away) is found beside frontal ones.

        ``fallback`` = n (a video) asks the first cascade and, only where it finds nothing, the n-th fallback
        look (counted round): a video spreads the fallback looks over its frames instead of paying for all of
        them in every frame, and asks them beside the faces it knows with :meth:`look_beside`
        (see :class:`~desktop.core.pipeline.Pipeline`).
        """
        small, scale = self._shrink(to_gray(image))
        every = self.config.fallback_looks
        if fallback is None:
            return self._new_faces([], self._looks if every else self._looks[:1], small, scale)
        boxes = self._new_faces([], self._looks[:1], small, scale)
        if boxes or not every:
            return boxes
        return self._new_faces([], (self._fallback(fallback),), small, scale)

    def look_beside(self, image: np.ndarray, faces: list[Box], fallback: int) -> list[Box]:
        """The faces that the n-th fallback look (counted round) finds in the whole frame and that are not one
        of ``faces``: in a video, where the first cascade keeps finding the known faces, the only way a face
        beside them that only a fallback sees gets found."""
        if not self.config.fallback_looks:
            return []
        small, scale = self._shrink(to_gray(image))
        return self._new_faces(list(faces), (self._fallback(fallback),), small, scale)[len(faces) :]

    def detect_first(self, image: np.ndarray) -> list[Box]:
        """The faces of the first look that finds any, largest first: the main face of a photo in one scan when
        it is frontal, where :meth:`detect` always asks every look (``train --detect`` over many photos)."""
        small, scale = self._shrink(to_gray(image))
        min_size = max(_CASCADE_WINDOW, round(self.config.min_face_size * scale))
        rects, angle = self._scan(small, min_size, None)
        return self._boxes(rects, angle, scale)

    def _fallback(self, n: int) -> _Look:
        """The n-th fallback look, counted round (a video asks them one at a time, in turn)."""
        return self._looks[1 + n % (len(self._looks) - 1)]

    def _new_faces(self, boxes: list[Box], looks: tuple[_Look, ...], small: np.ndarray, scale: float) -> list[Box]:
        """``boxes`` and then, look by look, each look's whole-frame finds that are not one of the boxes so far."""
        min_size = max(_CASCADE_WINDOW, round(self.config.min_face_size * scale))
        for look in looks:
            found = self._boxes(self._look(look, small, min_size, None), look.angle, scale)
            boxes += [box for box in found if not is_one_of(box, boxes)]
        return boxes

    def detect_near(self, image: np.ndarray, previous: list[Box]) -> list[Box]:
        """Look for each previously found face only around where it was.

        Each search covers the old box grown by 35 % of its size on every side, shrunk so the
        face is about three times the cascade's window (small enough to be fast, large enough
        that the box matches a whole-frame scan's), for faces 0.8x to 1.25x the old size:
        a few small windows instead of the whole frame's pyramid. A face that moved further
        or changed size more is not found here; the caller then scans the whole frame
        (see :class:`~desktop.core.pipeline.Pipeline`).
        """
        gray = to_gray(image)
        height, width = gray.shape
        found: list[Box] = []
        for box in previous:
            size = max(box.w, box.h)
            scale = min(1.0, _NEAR_FACE / size)
            pad = round(0.35 * size)
            x0, y0 = max(box.x - pad, 0), max(box.y - pad, 0)
            x1, y1 = min(box.x + box.w + pad, width), min(box.y + box.h + pad, height)
            roi = gray[y0:y1, x0:x1]
            if scale < 1:
                roi = cv2.resize(roi, (round(roi.shape[1] * scale), round(roi.shape[0] * scale)), cv2.INTER_AREA)
            min_size = max(_CASCADE_WINDOW, round(0.8 * size * scale), round(self.config.min_face_size * scale))
            max_size = round(1.25 * size * scale)
            if min(roi.shape) < min_size or max_size < min_size:
                continue
            rects, angle = self._scan(roi, min_size, max_size, tilt=box.angle)
            if len(rects):
                best = max(rects, key=lambda r: r[2] * r[3])
                found.extend(self._boxes([best], angle, scale, x0, y0))
        return one_per_face(found)  # two old boxes may find the same face

    def _scan(
        self, gray: np.ndarray, min_size: int, max_size: int | None, tilt: float = 0.0
    ) -> tuple[np.ndarray, float]:
        """The first cascade's hits; where it has none, those of the first fallback look that has some.

        Hits come back as (x, y, w, h) rows in ``gray``'s pixels, with the angle the frame was
        turned by to find them (see :class:`~model.preprocess.Box`). ``tilt``: a face followed
        that was found turned is looked for turned first (one scan, not five, while it stays so).
        """
        looks = list(self._looks if self.config.fallback_looks else self._looks[:1])
        if tilt:
            looks.sort(key=lambda look: look.angle != tilt)  # stable: the rest keep their order
        for look in looks:
            found = self._look(look, gray, min_size, max_size)
            if len(found):
                return found, look.angle
        return np.empty((0, 4), int), 0.0

    def _look(self, look: _Look, gray: np.ndarray, min_size: int, max_size: int | None) -> np.ndarray:
        """One look's hits, as (x, y, w, h) rows in ``gray``'s pixels (turned back where the look turned it)."""
        cfg = self.config
        lo = min_size if max_size else min_size * look.size_factor  # near a known face, its size rules
        image = np.ascontiguousarray(gray[:, ::-1]) if look.mirrored else gray
        if look.angle:
            turn = cv2.getRotationMatrix2D((gray.shape[1] / 2, gray.shape[0] / 2), look.angle, 1.0)
            image = cv2.warpAffine(gray, turn, gray.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
        found = np.asarray(
            look.cascade.detectMultiScale(
                image,
                scaleFactor=cfg.scale_factor,
                minNeighbors=max(cfg.min_neighbors - look.fewer_neighbours, min(cfg.min_neighbors, 1)),
                minSize=(lo, lo),
                **({"maxSize": (max_size, max_size)} if max_size else {}),
            )
        ).reshape(-1, 4)
        if len(found) and look.mirrored:
            found[:, 0] = gray.shape[1] - found[:, 0] - found[:, 2]
        if len(found) and look.angle:  # each box keeps its size, around its centre turned back into the frame
            back = cv2.invertAffineTransform(turn)
            centres = found[:, :2] + found[:, 2:] / 2
            found[:, :2] = np.round(centres @ back[:, :2].T + back[:, 2] - found[:, 2:] / 2)
        return found

    @staticmethod
    def _boxes(rects, angle: float, scale: float, dx: int = 0, dy: int = 0) -> list[Box]:
        """Boxes found at ``scale`` in an image whose origin is (dx, dy) in the frame -> frame boxes."""
        boxes = [
            Box(dx + round(x / scale), dy + round(y / scale), round(w / scale), round(h / scale), angle)
            for x, y, w, h in rects
        ]
        return sorted(boxes, key=lambda b: b.area, reverse=True)


@dataclass(frozen=True)
class _Look:
    """One cascade pass: which cascade, how many fewer overlapping hits it needs, and where it looks."""

    cascade: cv2.CascadeClassifier
    fewer_neighbours: int = 2  # than ``min_neighbors`` (at least 1 is kept)
    size_factor: int = 1  # whole-frame scans look only for faces this many times the smallest size
    mirrored: bool = False  # scan the mirror image (a profile cascade knows one side only)
    angle: float = 0.0  # scan the frame turned by this many degrees about its centre (for heads tilted sideways)


def _load_cascade(path: Path) -> cv2.CascadeClassifier:
    try:
        cascade = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError):  # OpenCV raises (wrapped) for a malformed XML file
        cascade = cv2.CascadeClassifier()
    if cascade.empty():
        raise DetectorError(f"{path}: cannot load the Haar cascade (missing or corrupt file)")
    return cascade
