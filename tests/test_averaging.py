"""Weight averaging: the running mean, batch-norm re-estimation, and --average-from in a real (tiny) run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.averaging import WeightAverage, reestimate_batch_norm
from model.checkpoint import load_model
from model.events import Average
from model.training import TrainConfig, train


def test_running_mean_and_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    epochs = [[rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=4).astype(np.float32)] for _ in range(3)]
    average = WeightAverage()
    for epoch, weights in enumerate(epochs, start=5):
        average.add(weights, epoch)
    for i in range(2):
        expected = np.mean([w[i] for w in epochs], axis=0, dtype=np.float64)
        np.testing.assert_allclose(average.weights[i], expected, rtol=1e-12)
    average.save(tmp_path / "average.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["average.npz"]  # no temp file left behind
    loaded = WeightAverage.load(tmp_path / "average.npz")
    assert (loaded.count, loaded.first_epoch, loaded.last_epoch) == (3, 5, 7)
    assert loaded.describe() == "mean of epochs 5-7 (3 epochs)"
    for a, b in zip(loaded.weights, average.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="weight arrays"):
        loaded.add(epochs[0][:1], 8)


def test_batch_norm_statistics_become_the_mean_of_batch_statistics():
    import keras

    inputs = keras.Input((4, 4, 1))
    conv = keras.layers.Conv2D(3, 1, use_bias=False)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(conv(inputs)))
    bn = model.layers[-1]
    x = np.random.default_rng(1).uniform(0, 255, (64, 4, 4, 1)).astype(np.float32)
    bn.moving_mean.assign(np.full(3, 123.0, np.float32))  # stale statistics, to be replaced

    assert reestimate_batch_norm(model, x, batch_size=16, seed=3) == 1

    features = x[..., 0, None] * keras.ops.convert_to_numpy(conv.kernel)[0, 0]  # (64, 4, 4, 3)
    order = np.random.default_rng(3).permutation(64)
    batches = [features[order[i : i + 16]].reshape(-1, 3) for i in range(0, 64, 16)]
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([b.mean(0) for b in batches], 0), rtol=1e-4)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([b.var(0) for b in batches], 0), rtol=1e-3)
    assert bn.momentum == pytest.approx(0.99)  # restored


@pytest.mark.slow
def test_average_from_survives_resume_and_is_kept_only_when_better(tiny_csv, tmp_path):
    run = tmp_path / "run"
    config = TrainConfig(data=str(tiny_csv), out=str(run), epochs=2, batch_size=16, arch="seed", lr=0.01,
                         average_from=2)  # fmt: skip
    train(config)
    epoch2 = load_model(run / "last.keras").model.get_weights()

    events = []
    config.epochs = 3
    train(config, resume=True, emit=events.append)
    epoch3 = load_model(run / "last.keras").model.get_weights()

    average = WeightAverage.load(run / "average.npz")
    assert (average.count, average.first_epoch, average.last_epoch) == (2, 2, 3)
    for mean, a, b in zip(average.weights, epoch2, epoch3, strict=True):
        np.testing.assert_allclose(mean, (a.astype(np.float64) + b) / 2, rtol=1e-6, atol=1e-7)

    done = next(e for e in events if isinstance(e, Average))
    assert done.epochs == [2, 3] and done.count == 2
    averaged = load_model(run / "average.keras")
    assert averaged.metadata.averaged_epochs == [2, 3]
    assert averaged.metadata.best_val_accuracy == pytest.approx(done.val_accuracy)
    state = json.loads((run / "state.json").read_text())
    expected = {"epochs": [2, 3], "count": 2, "val_accuracy": done.val_accuracy, "best": done.best}
    assert state["average"] == expected
    best, single = load_model(run / "best.keras").metadata, load_model(run / "best_epoch.keras").metadata
    assert single.averaged_epochs == [] and single.best_epoch == state["best_epoch"]
    if done.val_accuracy > state["best_val_accuracy"]:
        assert done.best and best.averaged_epochs == [2, 3]
    else:
        assert not done.best and best.averaged_epochs == [] and best.best_epoch == state["best_epoch"]
    assert json.loads((run / "config.json").read_text())["epochs"] == 3  # the resume's --epochs is kept
