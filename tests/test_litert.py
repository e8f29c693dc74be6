"""The model on LiteRT: parity with Keras, the .tflite twin and its hash, conversion, fallbacks, no TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT

from model.checkpoint import SHIPPED_MODEL, ModelLoadError, ModelMetadata, load_model, metadata_path, save_model
from model.engine import cache_dir, convert_in_process, load_predictor
from model.litert import MAX_CONVERSION_ERROR, LiteRTError, file_sha256, tflite_path
from model.network import ARCHITECTURES, build_model
from model.preprocess import Box, face_to_input

pytest_plugins = ["conftest_desktop"]


@pytest.fixture(scope="module")
def real_faces() -> np.ndarray:
    """Sixteen real face crops: the astronaut's face, shifted, zoomed and mirrored as a camera would see it."""
    image = cv2.imread(str(ROOT / "assets" / "astronaut.png"))
    faces = []
    for dx in (-12, 0, 12, 24):
        for size in (110, 150):
            crop = face_to_input(image, Box(170 + dx, 80 + dx // 2, size, size))
            faces += [crop, crop[:, ::-1]]
    return np.stack(faces).astype(np.float32)


def _save(model, path, **meta):
    save_model(model, path, ModelMetadata(arch=model.name, **meta))
    return path


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_litert_matches_keras_for_every_architecture(arch, tmp_path, real_faces):
    import keras

    # Seeded: an untrained net's top two probabilities can lie closer than 8-bit weights move them
    # (1 face in 384 over 24 random nets), so the same top emotion is asserted for fixed weights.
    keras.utils.set_random_seed(0)
    model = build_model(arch)
    path = _save(model, tmp_path / f"{arch}.keras")
    assert tflite_path(path).is_file()  # save_model wrote the twin
    keras_probs = np.asarray(model(real_faces, training=False))
    litert = load_predictor(path, device="cpu")
    assert litert.engine == "LiteRT"
    probs = litert(real_faces)
    assert np.abs(probs - keras_probs).max() <= MAX_CONVERSION_ERROR
    np.testing.assert_array_equal(probs.argmax(1), keras_probs.argmax(1))


def test_shipped_model_runs_on_litert_as_on_tensorflow(real_faces, monkeypatch):
    litert = load_predictor(SHIPPED_MODEL, device="cpu")
    assert litert.engine == "LiteRT" and litert.metadata.tflite_keras_sha256 == file_sha256(SHIPPED_MODEL)
    monkeypatch.setattr("model.engine.litert_available", lambda: False)  # e.g. an Intel Mac: no LiteRT wheel
    tensorflow = load_predictor(SHIPPED_MODEL, device="cpu")
    assert tensorflow.engine == "TensorFlow" and tensorflow.device == "CPU"
    expected = tensorflow(real_faces)
    assert np.abs(litert(real_faces) - expected).max() <= MAX_CONVERSION_ERROR
    np.testing.assert_array_equal(litert(real_faces).argmax(1), expected.argmax(1))
    keras_model = load_model(SHIPPED_MODEL).model
    expected = np.asarray(keras_model(real_faces, training=False))
    assert litert(real_faces[:0]).shape == (0, 7)
    # Flip TTA in one call of 2N faces equals the mean of the face and its mirror.
    flipped = load_predictor(SHIPPED_MODEL, device="cpu", tta=True)
    mirror = np.asarray(keras_model(real_faces[:, :, ::-1], training=False))
    np.testing.assert_allclose(flipped(real_faces), (expected + mirror) / 2, atol=MAX_CONVERSION_ERROR)
    # Each face's output does not depend on the others in its batch (activations are quantised per face).
    np.testing.assert_array_equal(np.concatenate([litert(f[None]) for f in real_faces]), litert(real_faces))


def test_the_shipped_twin_stores_its_weights_in_eight_bits():
    """Dynamic-range quantisation: the convolution and dense weights are int8 (a quarter of the float32
    size, and ~4x faster on LiteRT's XNNPACK); input and output stay float32 faces and probabilities."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path(SHIPPED_MODEL)))
    model = load_model(SHIPPED_MODEL).model
    weights = [t for t in interpreter.get_tensor_details() if t["dtype"] == np.int8]
    int8_values = sum(int(np.prod(t["shape"])) for t in weights)
    float_kernels = sum(int(np.prod(w.shape)) for w in model.weights if len(w.shape) >= 2)
    assert int8_values >= 0.99 * float_kernels  # every kernel, convolutions and dense layers
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert tflite_path(SHIPPED_MODEL).stat().st_size < 0.3 * 4 * model.count_params()


def test_a_stale_twin_is_never_used(tmp_path, real_faces):
    """The .keras changed after its twin was written: the twin is ignored and the new model converted."""
    path = _save(build_model("seed"), tmp_path / "m.keras")
    twin_bytes = tflite_path(path).read_bytes()
    other = build_model("seed")  # other random weights, saved over the same file without a new twin
    other.save(path)
    calls = []

    def convert(src, out):
        calls.append(src)
        convert_in_process(src, out)

    predictor = load_predictor(path, device="cpu", convert=convert)
    assert calls == [path] and (cache_dir() / f"{file_sha256(path)}.tflite").is_file()
    assert tflite_path(path).read_bytes() == twin_bytes  # left alone, just not used
    np.testing.assert_allclose(predictor(real_faces), other(real_faces, training=False), atol=MAX_CONVERSION_ERROR)
    # The second load finds the cached conversion: no conversion at all.
    load_predictor(path, device="cpu", convert=lambda *_: pytest.fail("converted twice"))


def test_corrupt_twin_and_corrupt_cache_are_converted_again(tmp_path, real_faces):
    path = _save(build_model("seed"), tmp_path / "m.keras")
    expected = load_predictor(path, device="cpu")(real_faces)
    tflite_path(path).write_bytes(b"not a flatbuffer")  # same hash in the metadata, broken file
    predictor = load_predictor(path, device="cpu")  # converts in this process (TensorFlow is here)
    np.testing.assert_allclose(predictor(real_faces), expected, atol=1e-5)
    cached = cache_dir() / f"{file_sha256(path)}.tflite"
    cached.write_bytes(cached.read_bytes()[:1000])  # truncated cache
    np.testing.assert_allclose(load_predictor(path, device="cpu")(real_faces), expected, atol=1e-5)


def test_a_failed_conversion_falls_back_to_tensorflow_with_a_warning(tmp_path, real_faces):
    path = _save(build_model("seed"), tmp_path / "m.keras")
    tflite_path(path).unlink()

    def broken(src, out):
        raise LiteRTError(f"{src.name}: cannot convert it for LiteRT (test)")

    predictor = load_predictor(path, device="cpu", convert=broken)
    assert predictor.engine == "TensorFlow" and "cannot convert" in predictor.warning
    assert "TensorFlow instead" in predictor.warning
    np.testing.assert_allclose(predictor(real_faces), load_model(path).model(real_faces, training=False), atol=1e-6)


def test_unusable_models_raise_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_predictor(tmp_path / "missing.keras", device="cpu")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="cannot load"):
        load_predictor(bad, device="cpu")
    relabelled = _save(build_model("seed"), tmp_path / "r.keras")
    meta = json.loads(metadata_path(relabelled).read_text())
    meta["labels"] = meta["labels"][::-1]
    metadata_path(relabelled).write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="labels"):
        load_predictor(relabelled, device="cpu")


def test_a_twin_that_is_not_an_emotion_model_is_refused(tmp_path):
    import keras

    from model.litert import LiteRTModel, convert

    wrong = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.raises(LiteRTError, match="emotions"):
        LiteRTModel(convert(wrong), name="wrong.tflite")
    garbage = tmp_path / "x.tflite"
    garbage.write_bytes(b"\0" * 64)
    with pytest.raises(LiteRTError, match="cannot load"):
        LiteRTModel(garbage)


def test_export_command_writes_the_twin_and_its_hash(tmp_path):
    path = tmp_path / "m.keras"
    build_model("seed").save(path)  # a bare .keras: no metadata, no twin
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}  # as a user runs it
    done = subprocess.run(
        [sys.executable, str(ROOT / "train_emotion.py"), "export", "--model", str(path)],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # What the user reads: the file written, and no start-up lines of TensorFlow's C++ (on a machine
    # without a GPU, "E0000 ... failed call to cuInit") nor the ~80 lines Keras prints while exporting.
    assert done.stdout.splitlines() == [f"wrote {tflite_path(path)}"]
    for chatter in ("absl::InitializeLog", "cuInit", "cudart_stub", "oneDNN", "XNNPACK", "TensorSpec", "Assets"):
        assert chatter not in done.stderr, done.stderr
    assert tflite_path(path).is_file()
    assert json.loads(metadata_path(path).read_text())["tflite_keras_sha256"] == file_sha256(path)
    assert load_predictor(path, device="cpu", convert=lambda *_: pytest.fail("twin not used")).engine == "LiteRT"
    # An unusable model: exit 2 and one line, no traceback.
    (tmp_path / "bad.keras").write_bytes(b"garbage")
    done = subprocess.run(
        [sys.executable, str(ROOT / "train_emotion.py"), "export", "--model", str(tmp_path / "bad.keras")],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 2 and "error: " in done.stderr and "Traceback" not in done.stderr


NO_TF_SCRIPT = """
import json, sys
from pathlib import Path
from desktop.core.classifier import EmotionClassifier
import numpy as np
faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype(np.float32)
report = {}
shipped = EmotionClassifier(device="auto")
shipped.load()
report["shipped"] = [shipped.device, "tensorflow" in sys.modules, shipped.predict(faces).tolist()]
user = EmotionClassifier(sys.argv[1], device="cpu")  # no twin: converted in a child process
user.load()
report["user"] = [user.device, "tensorflow" in sys.modules, user.predict(faces).tolist()]
bad = EmotionClassifier(sys.argv[2], device="cpu", fallback=True)  # unusable: the shipped model instead
bad.load()
report["bad"] = [bad.device, "tensorflow" in sys.modules, bad.warning, bad.name]
print(json.dumps(report))
"""


@pytest.mark.slow
def test_the_app_classifier_never_imports_tensorflow(tmp_path):
    """A user's .keras without a twin is converted in a child process; this process stays free of TensorFlow."""
    user = _save(build_model("seed"), tmp_path / "user.keras")
    tflite_path(user).unlink()
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"garbage")
    done = subprocess.run(
        [sys.executable, "-c", NO_TF_SCRIPT, str(user), str(bad)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["shipped"][:2] == ["CPU, LiteRT", False]
    assert report["user"][:2] == ["CPU, LiteRT", False]
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype(np.float32)
    keras_probs = load_model(user).model(faces, training=False)
    np.testing.assert_allclose(report["user"][2], keras_probs, atol=1e-4)
    assert (cache_dir() / f"{file_sha256(user)}.tflite").is_file()  # cached for the next start
    assert report["bad"][:2] == ["CPU, LiteRT", False] and "shipped model instead" in report["bad"][2]
    assert report["bad"][3] == SHIPPED_MODEL.name


WINDOW_SCRIPT = """
import json, sys
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from desktop.core.classifier import EmotionClassifier
from desktop.ui.main_window import MainWindow

video, user_model, settings_file = sys.argv[1:4]
app = QApplication([])
window = MainWindow(EmotionClassifier(device="auto", fallback=True), source=video,
                    settings=QSettings(settings_file, QSettings.Format.IniFormat))
window.loop_action.setChecked(True)
window.show()
report, state = {}, {"seen": 0}

def labelled() -> int:
    return sum(1 for _ in window.last.result.faces) if window.last else 0

def poll():
    if "before" not in report and window.last and window.last.processed >= 10 and labelled():
        report["before"] = {"tf": "tensorflow" in sys.modules, "device": window.status_labels["device"].text(),
                            "model": window.active_model, "frames": window.last.processed}
        state["seen"] = window.last.processed
        window.use_model(user_model)
    elif "before" in report and window.active_model == user_model and window.last.processed > state["seen"] + 10:
        report["after"] = {"tf": "tensorflow" in sys.modules, "device": window.status_labels["device"].text(),
                           "model": window.active_model, "faces": labelled(), "errors": window.errors}
        window.close()
        app.quit()

timer = QTimer()
timer.timeout.connect(poll)
timer.start(50)
QTimer.singleShot(240_000, app.quit)
app.exec()
print(json.dumps(report))
"""


@pytest.mark.slow
def test_the_real_window_labels_a_video_without_tensorflow_before_and_after_a_swap(tmp_path, astronaut_video):
    user = _save(build_model("seed"), tmp_path / "user.keras")
    tflite_path(user).unlink()  # a model without a twin: the swap converts it in a child process
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", WINDOW_SCRIPT, str(astronaut_video), str(user), str(tmp_path / "settings.ini")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["before"] == {**report["before"], "tf": False, "device": "CPU, LiteRT", "model": str(SHIPPED_MODEL)}
    assert report["after"]["tf"] is False and report["after"]["device"] == "CPU, LiteRT"
    assert report["after"]["model"] == str(user) and report["after"]["faces"] >= 1
    assert report["after"]["errors"] == []
