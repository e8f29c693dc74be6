"""Classification metrics from labels and predictions (numpy only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from model.spec import LABELS, NUM_CLASSES

#: A prediction that could not be made (``evaluate --detect``: no face found in the image). It counts as wrong.
NO_PREDICTION = -1


@dataclass(frozen=True)
class Metrics:
    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float | int]]
    confusion: list[list[int]]  # rows: true label, columns: predicted label (images without a face left out)
    balanced_accuracy: float = 0.0  # mean recall over the classes present: what unbalanced sets need
    no_face: int = 0  # images counted wrong because no face was found in them

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(LABELS), **asdict(self)}


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> Metrics:
    """Accuracy, balanced accuracy, macro-F1 over the classes present, per-class precision/recall/F1, confusion.

    Classes absent from ``y_true`` (a data set with only some emotions) are reported
    with ``support`` 0 and left out of the averages. A prediction of :data:`NO_PREDICTION`
    counts as wrong (in ``support``, not in the confusion matrix) and in ``no_face``.
    """
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    if len(y_true) == 0:
        raise ValueError("no samples to evaluate")
    made = y_pred != NO_PREDICTION
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(confusion, (y_true[made], y_pred[made]), 1)
    tp = np.diag(confusion).astype(float)
    support = np.bincount(y_true, minlength=NUM_CLASSES)
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
        balanced_accuracy=float(recall[present].mean()),
        no_face=int((~made).sum()),
    )
