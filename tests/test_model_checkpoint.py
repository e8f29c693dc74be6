"""Checkpoint I/O: round trips, atomic writes, and refusing files that are not our model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.checkpoint import (
    SHIPPED_MODEL,
    ModelLoadError,
    ModelMetadata,
    atomic_write_text,
    load_model,
    metadata_path,
    save_model,
)
from model.network import ARCHITECTURES, build_model


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_round_trips_with_identical_outputs(arch, tmp_path):
    """48x48x1 faces 0-255 in, 7 softmax probabilities out, saved and reloaded in safe mode."""
    model = build_model(arch)
    x = np.random.default_rng(0).uniform(0, 255, (5, 48, 48, 1)).astype(np.float32)
    path = tmp_path / f"{arch}.keras"
    save_model(model, path, ModelMetadata(arch=arch, best_val_accuracy=0.5))
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.model(x, training=False), model(x, training=False))
    assert loaded.metadata.arch == arch and loaded.metadata.best_val_accuracy == 0.5
    assert loaded.metadata.keras_version
    probs = np.asarray(loaded.model(x, training=False))
    assert probs.shape == (5, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_inference_save_has_no_optimizer_state(tmp_path):
    model = build_model("seed")
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.fit(np.zeros((4, 48, 48, 1)), np.eye(7)[[0, 1, 2, 3]], verbose=0)
    save_model(model, tmp_path / "slim.keras", None)
    save_model(model, tmp_path / "full.keras", None, include_optimizer=True)
    assert load_model(tmp_path / "full.keras", compile=True).model.optimizer is not None
    assert (tmp_path / "slim.keras").stat().st_size < (tmp_path / "full.keras").stat().st_size


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        from model.checkpoint import atomic_write

        def boom(tmp):
            tmp.write_text("half")
            raise RuntimeError("crash")

        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temp file left behind


def test_refuses_missing_corrupt_and_foreign_models(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "none.keras")
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is not a zip file")
    with pytest.raises(ModelLoadError, match="cannot load the model"):
        load_model(garbage)
    with pytest.raises(ModelLoadError, match=r"not a \.keras"):
        (tmp_path / "m.h5").write_bytes(b"x")
        load_model(tmp_path / "m.h5")

    import keras

    inp = keras.Input((64, 64, 3))
    wrong = keras.Model(inp, keras.layers.Dense(7)(keras.layers.Flatten()(inp)))
    wrong.save(tmp_path / "wrong.keras")
    with pytest.raises(ModelLoadError, match="takes input"):
        load_model(tmp_path / "wrong.keras")

    good = tmp_path / "relabelled.keras"
    save_model(build_model("seed"), good, ModelMetadata(arch="seed"))
    meta = json.loads(metadata_path(good).read_text())
    meta["labels"] = list(reversed(meta["labels"]))
    metadata_path(good).write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="labels"):
        load_model(good)


def test_safe_mode_refuses_code_in_a_model_file(tmp_path):
    import keras

    inp = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    out = keras.layers.Dense(7)(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inp, out).save(tmp_path / "lambda.keras")
    with pytest.raises(ModelLoadError):
        load_model(tmp_path / "lambda.keras")


def test_shipped_model_loads_and_predicts():
    from model.inference import make_predictor

    loaded = load_model(SHIPPED_MODEL)
    predict = make_predictor(loaded.model, tta=loaded.metadata.tta)
    probs = predict(np.full((4, 48, 48, 1), 128, np.float32))
    assert probs.shape == (4, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert SHIPPED_MODEL.stat().st_size < 20 * 1024 * 1024


@pytest.mark.parametrize("tta", [False, True])
def test_other_backends_predictor_matches_the_compiled_one(tta):
    """Under JAX (training on a GPU TensorFlow does not see) evaluation uses the model's own
    predict_on_batch; it must give the compiled TensorFlow predictor's probabilities, mirror images included."""
    from model.inference import make_predictor

    model = load_model(SHIPPED_MODEL).model
    faces = np.random.default_rng(2).uniform(0, 255, (5, 48, 48)).astype(np.float32)  # no channel axis
    expected = make_predictor(model, tta=tta)(faces)
    got = make_predictor(model, tta=tta, tf_function=False)(faces)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    if tta:  # a face and its mirror image get the same averaged probabilities
        np.testing.assert_allclose(got, make_predictor(model, tta=tta, tf_function=False)(faces[:, :, ::-1]), atol=1e-5)
    assert make_predictor(model, tta=tta, tf_function=False)(np.zeros((0, 48, 48, 1))).shape == (0, 7)
