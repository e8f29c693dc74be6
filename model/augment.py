"""On-the-fly augmentation of training faces: one affine warp per face, optional random erasing and camera faults."""

from __future__ import annotations

import cv2
import numpy as np

from model.preprocess import equalize
from model.spec import INPUT_SIZE

#: The default range of the zoom factor (below 1 the face gets smaller in its crop).
SCALE = (0.9, 1.1)


def augment_batch(
    x: np.ndarray,
    rng: np.random.Generator,
    erasing: float = 0.0,
    scale: tuple[float, float] = SCALE,
    degrade: float = 0.0,
) -> np.ndarray:
    """One affine warp per face: flip, +-10 % shift, a zoom factor from ``scale``, +-10 degree rotation.

    A wider ``scale`` teaches the face's size in its crop: the dataset's own crops elsewhere are
    looser or tighter than FER2013's (measured with the model shipped before the option: posed-jaffe,
    whose crops show head and shoulders, 37 % as given and 52 % cut to the middle 70 %).

    Borders are reflected, as a face crop continues past its edge (below a zoom factor of ~0.7 the
    reflection reaches the face itself and shows parts of it twice). ~9,000 faces/s. With ``erasing``
    > 0, that fraction of the faces also get one rectangle (2-33 % of the face, aspect 0.3-3.3) filled
    with noise (random erasing, Zhong et al. 2017): a hand, a scarf or glasses hide part of real faces,
    and the network should not lean on any one region. Its random draws come after the warp's, so
    ``erasing=0`` gives the same faces as before the option existed. With ``degrade`` > 0, that
    fraction of the faces also get one fault of a webcam or a compressed video (:func:`degrade_face`);
    its draws come last too.
    """
    out = np.empty_like(x)
    n = len(x)
    angles = rng.uniform(-10.0, 10.0, n)
    scales = rng.uniform(scale[0], scale[1], n)
    shifts = rng.uniform(-0.1, 0.1, (n, 2)) * INPUT_SIZE
    flips = rng.random(n) < 0.5
    center = (INPUT_SIZE / 2 - 0.5, INPUT_SIZE / 2 - 0.5)
    for i in range(n):
        m = cv2.getRotationMatrix2D(center, angles[i], scales[i])
        m[:, 2] += shifts[i]
        img = x[i, :, :, 0]
        if flips[i]:
            img = img[:, ::-1]
        out[i, :, :, 0] = cv2.warpAffine(
            np.ascontiguousarray(img),
            m,
            (INPUT_SIZE, INPUT_SIZE),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
    if erasing > 0:
        erase = rng.random(n) < erasing
        areas = rng.uniform(0.02, 0.33, n) * INPUT_SIZE**2
        aspects = np.exp(rng.uniform(np.log(0.3), np.log(3.3), n))
        corners = rng.random((n, 2))
        for i in np.flatnonzero(erase):
            h = min(round(float(np.sqrt(areas[i] * aspects[i]))), INPUT_SIZE)
            w = min(round(float(np.sqrt(areas[i] / aspects[i]))), INPUT_SIZE)
            top, left = int(corners[i, 0] * (INPUT_SIZE - h + 1)), int(corners[i, 1] * (INPUT_SIZE - w + 1))
            out[i, top : top + h, left : left + w, 0] = rng.integers(0, 256, (h, w), dtype=np.uint8)
    if degrade > 0:
        for i in np.flatnonzero(rng.random(n) < degrade):
            out[i, :, :, 0] = degrade_face(out[i, :, :, 0], rng)
    return out


#: The faults :func:`degrade_face` draws from, one per degraded face.
FAULTS = ("low_resolution", "blur", "noise", "jpeg")


def degrade_face(face: np.ndarray, rng: np.random.Generator, fault: str | None = None) -> np.ndarray:
    """One fault of a real camera on a 48x48 equalised face, then equalised again, as the app would see it.

    - low resolution: a face 12-30 px wide in the frame, scaled up to 48 (a distant face, a small video);
    - blur: Gaussian, sigma 0.6-1.6 px (focus, motion, a soft lens);
    - noise: Gaussian sensor noise, sigma 4-16 grey levels (a dim room);
    - jpeg: compression at quality 15-50 (a streamed or re-encoded video).
    The app equalises every face after the camera has done its damage, so the degraded face is equalised
    again with the same function (:func:`model.preprocess.equalize`).
    """
    fault = fault or FAULTS[int(rng.integers(len(FAULTS)))]
    img = face.astype(np.uint8)
    if fault == "low_resolution":
        side = int(rng.integers(12, 31))
        small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    elif fault == "blur":
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.6, 1.6)))
    elif fault == "noise":
        img = np.clip(img + rng.normal(0.0, rng.uniform(4.0, 16.0), img.shape), 0, 255).astype(np.uint8)
    elif fault == "jpeg":
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 51))])
        img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else img
    else:
        raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
    return equalize(img)
