"""Classification metrics from labels and predictions (numpy only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from model.spec import LABELS, NUM_CLASSES


@dataclass(frozen=True)
class Metrics:
    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float | int]]
    confusion: list[list[int]]  # rows: true label, columns: predicted label

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(LABELS), **asdict(self)}


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> Metrics:
    """Accuracy, macro-F1 over the classes present, per-class precision/recall/F1, confusion.

    Classes absent from ``y_true`` (a data set with only some emotions) are reported
    with ``support`` 0 and left out of the macro average.
    """
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    if len(y_true) == 0:
        raise ValueError("no samples to evaluate")
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    per_class = {
        LABELS[i]: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i in range(NUM_CLASSES)
    }
    return Metrics(
        n=len(y_true),
        accuracy=float(tp.sum() / len(y_true)),
        macro_f1=float(f1[present].mean()),
        per_class=per_class,
        confusion=confusion.tolist(),
    )
