"""Weight averaging over a run's later epochs (stochastic weight averaging, Izmailov et al. 2018).

Why: at the learning rates that train fastest, FER2013 validation accuracy swings by several points
from one epoch to the next; the weights bounce around a wide minimum, and their mean lies nearer its
centre than any one of them. On the vgg100 run the mean of epochs 50-55 scored 67.0 % on PublicTest
while no single epoch had passed 63.5 %. The averaged network needs its own batch-norm statistics (the
activations of the mean network are not the mean of the networks' activations): they are measured
again on the training faces, as ``torch.optim.swa_utils.update_bn`` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.checkpoint import atomic_write

log = logging.getLogger(__name__)


@dataclass
class WeightAverage:
    """Running mean of a model's weights, one ``add`` per epoch; saved as ``.npz`` to survive a resume."""

    weights: list[np.ndarray] = field(default_factory=list)
    count: int = 0
    first_epoch: int = 0
    last_epoch: int = 0

    def add(self, weights: list[np.ndarray], epoch: int) -> None:
        if not self.count:
            self.weights = [np.array(w, np.float64) for w in weights]
            self.first_epoch = epoch
        else:
            if len(weights) != len(self.weights):
                raise ValueError(f"epoch {epoch}: {len(weights)} weight arrays, the average has {len(self.weights)}")
            for mean, w in zip(self.weights, weights, strict=True):
                mean += (w - mean) / (self.count + 1)
        self.count += 1
        self.last_epoch = epoch

    def model_weights(self) -> list[np.ndarray]:
        return [w.astype(np.float32) for w in self.weights]

    def describe(self) -> str:
        return f"mean of epochs {self.first_epoch}-{self.last_epoch} ({self.count} epochs)"

    def save(self, path: Path) -> None:
        def write(tmp: Path) -> None:
            with tmp.open("wb") as fh:  # a file object, so numpy does not append ".npz" to the temp name
                np.savez(
                    fh,
                    count=self.count,
                    first_epoch=self.first_epoch,
                    last_epoch=self.last_epoch,
                    **{f"w{i:04d}": w for i, w in enumerate(self.weights)},
                )

        atomic_write(Path(path), write, suffix=".npz")

    @classmethod
    def load(cls, path: Path) -> WeightAverage:
        with np.load(path) as data:
            keys = sorted(k for k in data.files if k.startswith("w"))
            return cls(
                weights=[data[k].astype(np.float64) for k in keys],
                count=int(data["count"]),
                first_epoch=int(data["first_epoch"]),
                last_epoch=int(data["last_epoch"]),
            )


def _batch_norm_layers(layer) -> list:
    import keras

    found = []
    for sub in getattr(layer, "layers", []):
        if isinstance(sub, keras.layers.BatchNormalization):
            found.append(sub)
        else:
            found.extend(_batch_norm_layers(sub))
    return found


def reestimate_batch_norm(model, x: np.ndarray, *, batch_size: int = 256, seed: int = 0) -> int:
    """Set every batch-norm layer's moving mean and variance to the mean of its batch statistics over ``x``.

    Runs ``x`` (uint8 or float faces, 0-255) through the model in training mode with the momentum of
    batch ``k`` set to ``k / (k + 1)``, which turns the moving average into a plain average. Only the
    statistics change; returns the number of batch-norm layers.
    """
    layers = _batch_norm_layers(model)
    if not layers:
        return 0
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))
    order = np.random.default_rng(seed).permutation(len(x))
    try:
        for k, start in enumerate(range(0, len(x), batch_size)):
            for layer in layers:
                layer.momentum = k / (k + 1)
            model(x[order[start : start + batch_size]].astype(np.float32), training=True)
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum
    return len(layers)


def averaged_model(template, average: WeightAverage, x: np.ndarray, *, seed: int = 0):
    """A model shaped like ``template`` with ``average``'s weights and batch-norm statistics measured on ``x``."""
    import keras

    model = keras.Model.from_config(template.get_config())
    model.set_weights(average.model_weights())
    reestimate_batch_norm(model, x, seed=seed)
    return model
