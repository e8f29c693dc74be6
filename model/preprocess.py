"""The one face -> model-input function, shared by training, evaluation and the app.

Every face the model ever sees goes through :func:`face_to_input`: grayscale, crop the
box (expanded by a margin, clipped at the frame edge; a face found tilted is cut upright), resize to 48x48 with
``cv2.INTER_AREA`` when shrinking and ``cv2.INTER_LINEAR`` when enlarging, equalise the
grey-level histogram, and return ``uint8`` values 0-255.

Why equalise: a camera crop's brightness and contrast depend on the room, a FER2013
face's on the photo it was cut from. Spreading every face's grey levels flat over 0-255
takes both out of what the model has to learn, and it is what every shipped model so far
was trained on (an equalised copy of FER2013). Measured with the model shipped before this
step existed: FER2013 PublicTest 64.1 % on raw faces, 69.1 % on equalised ones.

Scaling to 0-1 is *not* done here: it is the first layer of the model, so whoever loads
the model file cannot forget or repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model.spec import INPUT_SIZE

#: Default margin added around a Haar box on each side, as a fraction of its size.
#: A FER2013 face is about a Haar box (the box covers ~98 % of the crop), so the app's crop stays
#: close to it: with 0.05 instead of 0.1, ``evaluate --detect`` scored higher on PublicTest and
#: faces-in-the-wild for each of four nets and the shipped ensemble (README, model card).
DEFAULT_MARGIN: float = 0.05


@dataclass(frozen=True)
class Box:
    """A face's box in pixel coordinates (x, y of the top-left corner).

    ``angle`` (degrees, counter-clockwise as in OpenCV) is set for a face found tilted: it is
    upright in the frame turned by ``angle`` about the box's centre, and that is how
    :func:`face_to_input` cuts it. The box itself is drawn upright, around the same centre.
    """

    x: int
    y: int
    w: int
    h: int
    angle: float = 0.0

    @property
    def area(self) -> int:
        return max(self.w, 0) * max(self.h, 0)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Return a 2-D ``uint8`` grayscale view or copy of an image.

    Accepts gray (HxW or HxWx1), BGR (HxWx3) and BGRA (HxWx4), the layouts OpenCV
    decodes to. Other dtypes are clipped to 0-255.
    """
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"unsupported image shape {image.shape}")


def expand_box(box: Box, margin: float, frame_w: int, frame_h: int) -> Box:
    """Grow ``box`` by ``margin`` of its size on every side, then clip it to the frame.

    Clipping matters: a negative index would silently wrap around in numpy.
    """
    dx = round(box.w * margin)
    dy = round(box.h * margin)
    x0 = max(box.x - dx, 0)
    y0 = max(box.y - dy, 0)
    x1 = min(box.x + box.w + dx, frame_w)
    y1 = min(box.y + box.h + dy, frame_h)
    return Box(x0, y0, max(x1 - x0, 0), max(y1 - y0, 0))


def face_to_input(image: np.ndarray, box: Box | None = None, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Turn a face in ``image`` into one model input: equalised ``uint8`` array of shape (48, 48, 1).

    ``box`` is the face in ``image`` (the whole image when ``None``, as for a FER2013
    row or an image-folder file, which are already face crops; no margin is added then).
    Raises ``ValueError`` for an empty crop.
    """
    gray = to_gray(image)
    if box is not None and box.angle:
        gray = _cut_upright(gray, box, margin)
    elif box is not None:
        h, w = gray.shape
        box = expand_box(box, margin, w, h)
        if box.w == 0 or box.h == 0:
            raise ValueError("face box lies outside the image")
        gray = gray[box.y : box.y + box.h, box.x : box.x + box.w]
    if gray.size == 0:
        raise ValueError("empty face crop")
    if gray.shape != (INPUT_SIZE, INPUT_SIZE):
        shrinking = gray.shape[0] > INPUT_SIZE or gray.shape[1] > INPUT_SIZE
        gray = cv2.resize(
            gray,
            (INPUT_SIZE, INPUT_SIZE),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
    return equalize(gray)[:, :, None]


def _cut_upright(gray: np.ndarray, box: Box, margin: float) -> np.ndarray:
    """A tilted face's box grown by ``margin``, cut from the frame turned by ``box.angle`` about its centre.

    Edge pixels are repeated where the turned box reaches past the frame, so the face keeps its
    place in the crop as it does when the frame's edge is not near.
    """
    w, h = box.w + 2 * round(box.w * margin), box.h + 2 * round(box.h * margin)
    if w <= 0 or h <= 0:
        raise ValueError("empty face crop")
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    turn = cv2.getRotationMatrix2D((cx, cy), box.angle, 1.0)
    turn[:, 2] -= (cx - w / 2, cy - h / 2)
    return cv2.warpAffine(gray, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def equalize(gray: np.ndarray) -> np.ndarray:
    """Spread a 48x48 face's grey levels flat over 0-255 (histogram equalisation): the last step of every
    face the model sees, so a camera's exposure, contrast and gamma matter little."""
    return cv2.equalizeHist(np.ascontiguousarray(gray, dtype=np.uint8))


def faces_to_batch(image: np.ndarray, boxes: list[Box], margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Stack :func:`face_to_input` for every box into one ``float32`` batch (N, 48, 48, 1).

    The image is converted to gray once, not once per face.
    """
    gray = to_gray(image)
    if not boxes:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE, 1), np.float32)
    return np.stack([face_to_input(gray, b, margin) for b in boxes]).astype(np.float32)
