"""On-the-fly augmentation of training faces: one affine warp per face, and optional random erasing."""

from __future__ import annotations

import cv2
import numpy as np

from model.spec import INPUT_SIZE

#: The default range of the zoom factor (below 1 the face gets smaller in its crop).
SCALE = (0.9, 1.1)


def augment_batch(
    x: np.ndarray, rng: np.random.Generator, erasing: float = 0.0, scale: tuple[float, float] = SCALE
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
    ``erasing=0`` gives the same faces as before the option existed.
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
    return out
