"""What the network trains on: each face's target, class weights, and the seeded, augmented batches."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from model import ferplus
from model.augment import augment_batch
from model.data import TRAIN, Split
from model.spec import NUM_CLASSES

if TYPE_CHECKING:
    from model.training import TrainConfig


def class_weights(y: np.ndarray) -> np.ndarray:
    """Inverse-frequency weights normalised to mean 1 over the samples (sklearn's 'balanced')."""
    counts = np.bincount(y, minlength=NUM_CLASSES).astype(float)
    weights = np.divide(len(y), NUM_CLASSES * counts, out=np.zeros(NUM_CLASSES), where=counts > 0)
    return weights.astype(np.float32)


def training_targets(train: Split, config: TrainConfig, soft: np.ndarray | None = None) -> np.ndarray:
    """Each training face's target: its label, mixed with FER+ votes and the teachers' probabilities when asked."""
    targets = np.eye(NUM_CLASSES, dtype=np.float32)[train.y]
    if config.soft_labels:
        targets = ferplus.mix_targets(train.y, ferplus.read_votes(config.soft_labels, TRAIN), config.soft_weight)
    if soft is not None:
        targets = (1.0 - config.teacher_weight) * targets + config.teacher_weight * soft.astype(np.float32)
    return targets


def make_batches(train: Split, config: TrainConfig, soft: np.ndarray | None = None):
    import keras  # lazily: importing model/ must not start TensorFlow

    weights = class_weights(train.y) if config.class_weight else None
    targets = training_targets(train, config, soft)

    class Batches(keras.utils.PyDataset):
        """Seeded shuffle and augmentation per (epoch, batch), from uint8 faces in memory."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self._order_epoch = -1
            self._order = np.arange(len(train))

        def __len__(self) -> int:
            return math.ceil(len(train) / config.batch_size)

        def __getitem__(self, index: int):
            if self._order_epoch != self.epoch:
                self._order = np.random.default_rng((config.seed, self.epoch)).permutation(len(train))
                self._order_epoch = self.epoch
            idx = self._order[index * config.batch_size : (index + 1) * config.batch_size]
            x = train.x[idx]
            if config.augment:
                rng = np.random.default_rng((config.seed, self.epoch, index))
                x = augment_batch(x, rng, config.erasing, tuple(config.scale), config.degrade)
            x = x.astype(np.float32)
            if weights is None:
                return x, targets[idx]
            return x, targets[idx], weights[train.y[idx]]

    return Batches()
