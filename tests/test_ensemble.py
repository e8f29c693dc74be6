"""Ensembles (model.ensemble): one model file whose output is its members' mean, on every engine and path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, write_tiny_csv
from test_litert import real_faces  # noqa: F401  (a fixture)
from test_train import run_cli

from model.checkpoint import LoadedModel, ModelMetadata, load_model, save_model
from model.engine import load_predictor
from model.ensemble import build_ensemble, combine
from model.litert import MAX_CONVERSION_ERROR
from model.network import build_model
from model.training import TrainConfig, train

pytestmark = pytest.mark.slow


def member_count(model) -> int:
    """How many nets ``model`` runs per face, read off its graph: nested models averaged, or 1."""
    import keras

    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return len(nested) if isinstance(model.get_layer(index=-1), keras.layers.Average) and nested else 1


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[LoadedModel]:
    """Two nets of the same architecture (same layer names), trained with different seeds; once per module
    (a combined model copies them, so no test changes them)."""
    folder = tmp_path_factory.mktemp("members")
    csv = write_tiny_csv(folder)
    trained = []
    for seed in (1, 2):
        config = TrainConfig(data=str(csv), out=str(folder / f"m{seed}"), epochs=1, batch_size=16, arch="seed",
                             seed=seed, average_from=0)  # fmt: skip
        trained.append(load_model(train(config).best_model))
    return trained


def test_an_ensemble_is_the_mean_of_its_members_in_keras_and_on_litert(members, tmp_path, tiny_csv, real_faces):  # noqa: F811
    each = [np.asarray(m.model(real_faces, training=False)) for m in members]
    assert np.abs(each[0] - each[1]).max() > 1e-3  # the members differ, so the mean is a real test
    model, metadata = combine(members, ["m1", "m2"])
    path = tmp_path / "ensemble.keras"
    save_model(model, path, metadata)

    mean = (each[0] + each[1]) / 2
    reloaded = load_model(path)
    np.testing.assert_allclose(np.asarray(reloaded.model(real_faces, training=False)), mean, atol=1e-6)
    assert member_count(reloaded.model) == 2 and member_count(members[0].model) == 1
    assert reloaded.metadata.members == ["m1", "m2"] and reloaded.metadata.tta is False
    assert set(reloaded.metadata.config["members"]) == {"m1", "m2"}

    litert = load_predictor(path, device="cpu")  # the app's engine, from the twin save_model wrote
    assert litert.engine == "LiteRT"
    assert np.abs(litert(real_faces) - mean).max() <= MAX_CONVERSION_ERROR  # its weights in 8 bits

    out = run_cli("evaluate", "--model", path, "--data", tiny_csv, "--usage", "PublicTest")
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["members"] == 2 and summary["tta"] is False and "2 nets" in out.stdout.splitlines()[0]


def test_fine_tuning_an_ensemble_keeps_it_an_ensemble(members, tmp_path, tiny_csv):
    """The Retrain button fine-tunes the model in use; when that is an ensemble, the result is one too,
    weight average and batch-norm statistics included (both reach into the members)."""
    model, metadata = combine(members, ["m1", "m2"])
    init = tmp_path / "ensemble.keras"
    save_model(model, init, metadata)
    result = train(TrainConfig(data=str(tiny_csv), out=str(tmp_path / "tuned"), epochs=2, batch_size=16,
                               init=str(init), average_from=1))  # fmt: skip
    tuned = load_model(tmp_path / "tuned" / "average.keras").model
    assert member_count(tuned) == 2
    moved = [np.abs(a - b).max() for a, b in zip(tuned.get_weights(), model.get_weights(), strict=True)]
    assert max(moved) > 0  # it trained
    assert result.metrics is not None and 0.0 <= result.metrics.accuracy <= 1.0


def test_an_ensemble_needs_two_models():
    with pytest.raises(ValueError, match="at least two"):
        build_ensemble([build_model("seed")])


def test_the_shipped_model_records_what_it_is_made_of():
    """The shipped default: its metadata names its members, and flips are on only for a single net
    (two nets without flips cost what one with flips does; benchmarks/model_bench.py)."""
    shipped = load_model(ROOT / "model" / "shipped" / "emotion_lens.keras")
    count = member_count(shipped.model)
    assert count == max(1, len(shipped.metadata.members))
    assert shipped.metadata.tta == (count == 1)
    assert isinstance(shipped.metadata, ModelMetadata)
