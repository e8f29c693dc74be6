"""The one face->input function, and train/serve parity."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT, write_fer_csv

from model.data import load_dataset
from model.preprocess import DEFAULT_MARGIN, Box, expand_box, face_to_input, faces_to_batch, to_gray
from model.spec import INPUT_SHAPE, LABEL_KEYS, LABELS


def test_labels_are_fer2013_order():
    assert LABELS == ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
    assert LABEL_KEYS[6] == "neutral" and INPUT_SHAPE == (48, 48, 1)


def test_expand_box_clips_at_frame_edges():
    assert expand_box(Box(-10, 5, 50, 50), 0.2, 100, 60) == Box(0, 0, 50, 60)
    assert expand_box(Box(90, 40, 20, 20), 0.0, 100, 60) == Box(90, 40, 10, 20)


def test_face_to_input_crops_the_box_with_margin_and_resizes():
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[50:150, 100:200] = (0, 255, 0)  # a green face-sized square
    out = face_to_input(frame, Box(110, 60, 80, 80), margin=0.125)  # margin 10 px: exactly the square
    assert out.shape == (48, 48, 1) and out.dtype == np.uint8
    expected = cv2.cvtColor(np.full((1, 1, 3), (0, 255, 0), np.uint8), cv2.COLOR_BGR2GRAY)[0, 0]
    assert np.all(out == expected)


def test_face_to_input_never_wraps_around_negative_indices():
    frame = np.zeros((100, 100), np.uint8)
    frame[:, 90:] = 255  # bright strip on the right edge only
    out = face_to_input(frame, Box(-20, 0, 40, 100), margin=0.0)  # box hangs off the left edge
    assert out.max() == 0  # nothing from the right edge leaked in
    with pytest.raises(ValueError):
        face_to_input(frame, Box(200, 200, 10, 10))


def test_faces_to_batch_is_float32_batch():
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    batch = faces_to_batch(frame, [Box(0, 0, 50, 50), Box(60, 30, 70, 70)])
    assert batch.shape == (2, 48, 48, 1) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[1], face_to_input(to_gray(frame), Box(60, 30, 70, 70)))
    assert faces_to_batch(frame, []).shape == (0, 48, 48, 1)


def test_train_serve_parity(tmp_path):
    """A face reaches the model as the identical tensor through the data paths and the app path."""
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    box = Box(100, 60, 96, 96)
    served = face_to_input(frame, box)  # what the app feeds the model

    # The training path for an image folder: the same crop saved as a file, then loaded.
    crop_box = expand_box(box, DEFAULT_MARGIN, 320, 240)  # the margin the app crops with
    crop = frame[crop_box.y : crop_box.y + crop_box.h, crop_box.x : crop_box.x + crop_box.w]
    (tmp_path / "faces" / "train" / "happy").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "faces" / "train" / "happy" / "0.png"), crop)
    from_folder = load_dataset(tmp_path / "faces").split("Training").x[0]
    np.testing.assert_array_equal(from_folder, served)

    # The FER2013 CSV path: a raw 48x48 face (dim, low contrast, as the original pixels are) as its
    # pixel string, and the same face seen by the app inside a camera frame (no margin: the box is the face).
    raw = rng.integers(40, 120, (48, 48), dtype=np.uint8)
    camera = np.full((240, 320), 200, np.uint8)
    camera[100:148, 50:98] = raw
    served = face_to_input(camera, Box(50, 100, 48, 48), margin=0.0)
    csv = write_fer_csv(tmp_path / "one.csv", raw[None], np.array([3]), ["Training"])
    from_csv = load_dataset(csv).split("Training").x[0]
    np.testing.assert_array_equal(from_csv, served)
    # Both are equalised: the grey levels fill 0-255 whatever the face's own range was.
    assert served.min() == 0 and served.max() == 255
    np.testing.assert_array_equal(served[:, :, 0], cv2.equalizeHist(raw))


def test_equalisation_takes_out_brightness_and_contrast():
    """The same face in a dark room and in a bright one gives the model the same input."""
    rng = np.random.default_rng(9)
    face = rng.integers(0, 100, (48, 48))
    dark, bright = (face + 10).astype(np.uint8), (2 * face + 50).astype(np.uint8)  # any increasing change of levels
    np.testing.assert_array_equal(face_to_input(dark), face_to_input(bright))
    assert face_to_input(dark).max() == 255
    assert not np.array_equal(face_to_input(dark), face_to_input(dark[::-1]))


def test_importing_model_and_training_loads_no_qt():
    code = (
        "import sys, model, model.spec, model.preprocess, model.data, model.checkpoint, model.metrics, "
        "model.training, model.inference, model.userdata, train_emotion\n"
        "qt = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))]\n"
        "assert not qt, qt\n"
        "assert 'tensorflow' not in sys.modules, 'model/ must import TensorFlow lazily'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
