"""On-the-fly augmentation: seeded, shape-preserving; erasing hides one rectangle; camera faults do what they say."""

from __future__ import annotations

import cv2
import numpy as np
from conftest import ROOT

from model.augment import FAULTS, augment_batch, degrade_face
from model.preprocess import Box, face_to_input


def faces(n: int = 32) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 48, 48, 1), dtype=np.uint8)


def test_same_seed_same_faces_and_every_face_changes():
    x = faces()
    a = augment_batch(x, np.random.default_rng((0, 3, 7)))
    b = augment_batch(x, np.random.default_rng((0, 3, 7)))
    assert a.dtype == np.uint8 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    assert all((a[i] != x[i]).any() for i in range(len(x)))


def test_erasing_hides_one_rectangle_and_leaves_the_warp_alone():
    x = faces(64)
    warped = augment_batch(x, np.random.default_rng(5))
    erased = augment_batch(x, np.random.default_rng(5), erasing=1.0)
    for i in range(len(x)):
        rows, cols = np.nonzero(warped[i, ..., 0] != erased[i, ..., 0])
        assert len(rows), f"face {i} was not erased"
        top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
        area = (bottom - top + 1) * (right - left + 1)
        assert 0.02 * 48 * 48 * 0.5 <= area <= 0.33 * 48 * 48 * 1.1  # one 2-33 % rectangle (rounding aside)
        outside = np.ones((48, 48), bool)
        outside[top : bottom + 1, left : right + 1] = False
        np.testing.assert_array_equal(warped[i, outside, 0], erased[i, outside, 0])
    half = augment_batch(x, np.random.default_rng(5), erasing=0.5)
    changed = np.mean([(half[i] != warped[i]).any() for i in range(len(x))])
    assert 0.25 < changed < 0.75


def test_scale_sets_the_size_of_the_face_in_its_crop():
    x = np.zeros((16, 48, 48, 1), np.uint8)
    x[:, 16:32, 16:32] = 255  # a bright "face" a third of the crop wide
    sizes = {}
    for scale in ((0.7, 0.7), (1.0, 1.0), (1.4, 1.4)):
        out = augment_batch(x, np.random.default_rng(1), scale=scale)
        sizes[scale[0]] = np.mean([(face[..., 0] > 127).sum() for face in out])
    assert sizes[0.7] < 0.6 * sizes[1.0] and sizes[1.4] > 1.7 * sizes[1.0]  # the area goes with the scale squared
    np.testing.assert_array_equal(  # the default range draws the same faces as before the option existed
        augment_batch(x, np.random.default_rng(2)), augment_batch(x, np.random.default_rng(2), scale=(0.9, 1.1))
    )


def _real_face() -> np.ndarray:
    return face_to_input(cv2.imread(str(ROOT / "assets" / "astronaut.png")), Box(170, 80, 150, 150))[..., 0]


def _sharpness(face: np.ndarray) -> float:
    return float(cv2.Laplacian(face.astype(np.float32), cv2.CV_32F).var())


def test_each_camera_fault_does_what_it_says_and_the_face_is_equalised_again():
    face = _real_face()
    sharp = _sharpness(face)
    out = {fault: degrade_face(face, np.random.default_rng(4), fault) for fault in FAULTS}
    assert _sharpness(out["low_resolution"]) < 0.5 * sharp and _sharpness(out["blur"]) < 0.5 * sharp
    assert _sharpness(out["noise"]) > 1.2 * sharp
    assert 0 < np.abs(out["jpeg"].astype(int) - face).mean() < 20  # compression artefacts, the same face
    for fault, img in out.items():
        assert img.dtype == np.uint8 and img.shape == (48, 48), fault
        # equalised: the grey levels spread over the whole range, about a quarter of the pixels in each quarter
        assert img.min() < 20 and img.max() > 235, fault
        assert 0.15 < np.mean(img < 64) < 0.35, fault
    np.testing.assert_array_equal(out["noise"], degrade_face(face, np.random.default_rng(4), "noise"))  # seeded
    with np.testing.assert_raises(ValueError):
        degrade_face(face, np.random.default_rng(0), "fog")


def test_degrade_touches_that_fraction_of_faces_and_leaves_the_rest_as_before():
    x = np.repeat(_real_face()[None, :, :, None], 64, axis=0)
    plain = augment_batch(x, np.random.default_rng(9), erasing=0.3)
    none = augment_batch(x, np.random.default_rng(9), erasing=0.3, degrade=0.0)
    np.testing.assert_array_equal(plain, none)  # the default draws the same faces as before the option
    half = augment_batch(x, np.random.default_rng(9), erasing=0.3, degrade=0.5)
    changed = np.array([(half[i] != plain[i]).any() for i in range(len(x))])
    assert 0.3 < changed.mean() < 0.7
    all_of_them = augment_batch(x, np.random.default_rng(9), degrade=1.0)
    assert all((all_of_them[i] != augment_batch(x, np.random.default_rng(9))[i]).any() for i in range(len(x)))
