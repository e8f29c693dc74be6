"""Why this emotion? Occlusion sensitivity: which parts of a face pushed the top emotion up.

Each of a grid of square patches is hidden in turn (filled with the face's mean grey) and the model
is asked again, all copies in one batch. Where hiding a patch lowers the top emotion's probability,
that patch was evidence for it. The map is that drop, averaged over the patches that cover each pixel.

Why occlusion and not integrated gradients: it needs only forward passes, so it runs on LiteRT in
the app's process (which never imports TensorFlow), on any model the app can run, with the same
flips the app's bars use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.spec import INPUT_SIZE, LABELS

#: Patch side and step in model-input pixels: 16/8 gives a 5x5 grid of half-overlapping patches on a 48-pixel
#: face, 1 + 25 faces per map (~55 ms with flips here); 12/6 (7x7) looked alike at twice the cost.
PATCH = 16
STRIDE = 8

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Saliency:
    """One face's occlusion map."""

    face: np.ndarray  # (48, 48) uint8: the model's input, as the model saw it
    heatmap: np.ndarray  # (48, 48) float32 in [0, 1]: evidence for ``label`` (1 = the strongest)
    probs: np.ndarray  # (7,) float32: the model's probabilities for the whole, unmasked face
    label: int  # the emotion explained: the top one unless another was asked for

    @property
    def emotion(self) -> str:
        return LABELS[self.label]


def occlusion_grid(size: int = INPUT_SIZE, patch: int = PATCH, stride: int = STRIDE) -> list[tuple[int, int]]:
    """Top-left corners of the patches; the last row and column touch the far edges."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return [(y, x) for y in starts for x in starts]


def occlusion_map(
    predict: Predict, face: np.ndarray, *, label: int | None = None, patch: int = PATCH, stride: int = STRIDE
) -> Saliency:
    """The occlusion map of one model input ``face`` ((48, 48) or (48, 48, 1), values 0-255).

    ``predict`` takes (N, 48, 48, 1) ``float32`` faces and returns (N, 7) probabilities: the
    app's classifier, or any predictor of :mod:`model.engine`. One call, of 1 + 25 faces (the 5x5 grid).
    """
    face = np.asarray(face).reshape(INPUT_SIZE, INPUT_SIZE)
    grid = occlusion_grid(INPUT_SIZE, patch, stride)
    batch = np.repeat(face.astype(np.float32)[None, :, :, None], len(grid) + 1, axis=0)
    fill = float(face.mean())
    for k, (y, x) in enumerate(grid, start=1):
        batch[k, y : y + patch, x : x + patch, 0] = fill
    probs = np.asarray(predict(batch), np.float32)
    target = int(np.argmax(probs[0])) if label is None else label
    drops = np.maximum(probs[0, target] - probs[1:, target], 0.0)
    evidence = np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32)
    coverage = np.zeros_like(evidence)
    for drop, (y, x) in zip(drops, grid, strict=True):
        evidence[y : y + patch, x : x + patch] += drop
        coverage[y : y + patch, x : x + patch] += 1.0
    evidence /= coverage
    peak = float(evidence.max())
    heatmap = evidence / peak if peak > 1e-6 else np.zeros_like(evidence)
    return Saliency(face.astype(np.uint8), heatmap, probs[0], target)
