"""What a run leaves for people: ``history.csv``, ``curves.png`` and ``confusion.png``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from model.checkpoint import atomic_write
from model.metrics import Metrics
from model.spec import LABELS, NUM_CLASSES


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)

    atomic_write(path, write)


def read_history(path: Path) -> list[dict[str, float]]:
    """The rows of a run's ``history.csv`` (empty when there is none yet)."""
    if not Path(path).exists():
        return []
    with Path(path).open(newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def write_plots(run_dir: Path, history: list[dict[str, float]], metrics: Metrics) -> None:
    """``curves.png`` (loss and accuracy per epoch) and ``confusion.png`` (row-normalised)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    if history:
        fig = Figure(figsize=(10, 4), dpi=100)
        ax_loss, ax_acc = fig.subplots(1, 2)
        epochs = [h["epoch"] for h in history]
        for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
            ax.plot(epochs, [h[key] for h in history], label="train")
            ax.plot(epochs, [h[f"val_{key}"] for h in history], label="validation")
            ax.set_xlabel("epoch")
            ax.set_title(key)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        atomic_write(run_dir / "curves.png", lambda tmp: fig.savefig(tmp, format="png"))

    cm = np.asarray(metrics.confusion, float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(6.5, 5.5), dpi=100)
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(NUM_CLASSES), LABELS, rotation=45, ha="right")
    ax.set_yticks(range(NUM_CLASSES), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {metrics.accuracy:.1%} (n={metrics.n})")
    for i in range(NUM_CLASSES):
        for j in range(NUM_CLASSES):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    atomic_write(run_dir / "confusion.png", lambda tmp: fig.savefig(tmp, format="png"))
