"""Training in mixed precision (bfloat16 on a CPU that has it) while every model file to run stays float32."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from model.checkpoint import load_model
from model.engine import load_predictor
from model.precision import cpu_has_bfloat16, training_policy
from model.training import TrainConfig, train


def test_auto_picks_bfloat16_only_on_a_cpu_with_bfloat16_instructions(tmp_path, monkeypatch):
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n")
    older = tmp_path / "older"
    older.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\nbugs\t\t: avx512_bf16_is_not_a_flag_here\n")
    assert cpu_has_bfloat16(zen4) and not cpu_has_bfloat16(older) and not cpu_has_bfloat16(tmp_path / "missing")
    assert training_policy("auto", has_gpu=True) == "mixed_float16"
    assert training_policy("float32", has_gpu=False) == "float32"
    assert training_policy("bfloat16", has_gpu=False) == "mixed_bfloat16"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # TensorFlow would emulate bfloat16: slower than float32
    assert training_policy("auto", has_gpu=False) == "float32"
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        training_policy("half", has_gpu=False)


@pytest.mark.slow
def test_a_run_in_bfloat16_resumes_in_it_and_saves_float32_models_with_its_weights(tiny_csv, tmp_path):
    events = []
    config = TrainConfig(data=str(tiny_csv), out=str(tmp_path / "run"), epochs=1, batch_size=16, arch="vgg",
                         average_from=0, precision="bfloat16")  # fmt: skip
    train(config, emit=events.append)
    assert events[0].device.endswith("bfloat16")
    assert keras.mixed_precision.global_policy().name == "float32"  # the process is left as it was

    last = load_model(tmp_path / "run" / "last.keras").model  # resumable: keeps the run's precision
    assert {layer.dtype_policy.name for layer in last.layers[1:-1]} == {"mixed_bfloat16"}
    assert last.layers[-1].dtype_policy.name == "float32"  # the softmax, for the loss
    best = load_model(tmp_path / "run" / "best.keras")
    assert {layer.dtype_policy.name for layer in best.model.layers} == {"float32"}
    assert best.metadata.tflite_keras_sha256  # the LiteRT twin was converted from the float32 copy

    # One epoch, no average: best and last hold the same weights (mixed precision keeps them float32).
    weights = last.get_weights()
    assert all(w.dtype == np.float32 for w in weights)
    assert all(np.array_equal(a, b) for a, b in zip(best.model.get_weights(), weights, strict=True))
    faces = np.random.default_rng(0).uniform(0, 255, (16, 48, 48, 1)).astype(np.float32)
    float32 = best.model.predict(faces, verbose=0)
    bfloat16 = last.predict(faces, verbose=0)
    assert float32.dtype == np.float32 and bfloat16.dtype == np.float32
    assert np.abs(float32 - bfloat16).max() < 0.05
    litert = load_predictor(tmp_path / "run" / "best.keras", device="cpu", tta=False)
    assert np.abs(litert(faces) - float32).max() < 0.05


def test_an_ensemble_computes_in_bfloat16_inside_its_members_and_comes_back_exactly():
    from model.ensemble import build_ensemble
    from model.network import build_model
    from model.precision import computes_in_float32, with_policy

    keras.utils.set_random_seed(0)
    ensemble = build_ensemble([build_model("vgg"), build_model("seed")])
    mixed = with_policy(ensemble, "mixed_bfloat16")  # what fine-tuning the app's model trains
    members = [layer for layer in mixed.layers if hasattr(layer, "layers")]
    assert len(members) == 2 and not computes_in_float32(mixed)
    for member in members:
        policies = [layer.dtype_policy.name for layer in member.layers[1:]]
        assert policies[-1] == "float32" and set(policies[:-1]) == {"mixed_bfloat16"}  # the softmax stays float32
    assert mixed.layers[-1].dtype_policy.name == "float32"  # the mean of the members

    back = with_policy(mixed, "float32")  # what save_model writes
    assert computes_in_float32(back) and computes_in_float32(ensemble)
    faces = np.random.default_rng(1).uniform(0, 255, (8, 48, 48, 1)).astype(np.float32)
    assert np.array_equal(back.predict(faces, verbose=0), ensemble.predict(faces, verbose=0))
    assert np.abs(mixed.predict(faces, verbose=0) - ensemble.predict(faces, verbose=0)).max() < 0.05
