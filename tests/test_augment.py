"""On-the-fly augmentation: seeded, shape-preserving, and random erasing touches one rectangle only."""

from __future__ import annotations

import numpy as np

from model.augment import augment_batch


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
