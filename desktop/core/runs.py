"""Trained models on disk: the shipped one and every finished Retrain run (Qt-free).

A run folder (written by ``train_emotion.py train``, laid out by :class:`model.rundir.RunDir`) is
*finished* when it holds ``best.keras`` and ``metrics.json``; one with ``state.json`` but no
``metrics.json`` was cancelled or killed and can be resumed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from desktop.core.resources import resource_path
from model.checkpoint import SHIPPED_MODEL, ModelLoadError, read_metadata
from model.rundir import RunDir
from model.userdata import runs_dir


@dataclass(frozen=True)
class ModelEntry:
    """A model the user can switch to."""

    path: Path
    name: str
    accuracy: float | None  # on the run's own validation split
    created: str
    shipped: bool = False

    @property
    def label(self) -> str:
        acc = f"{self.accuracy:.1%}" if self.accuracy is not None else "n/a"
        return f"{self.name} — {acc}" + (f", {self.created}" if self.created else "")


def _entry(path: Path, name: str, shipped: bool) -> ModelEntry | None:
    try:
        meta = read_metadata(path)
    except ModelLoadError:  # unreadable metadata: list the model without it
        meta = None
    accuracy = None
    metrics = RunDir(path.parent).metrics
    if metrics.exists():
        try:
            accuracy = float(json.loads(metrics.read_text())["accuracy"])
        except (OSError, ValueError, KeyError):
            accuracy = None
    if accuracy is None and meta is not None:
        accuracy = meta.best_val_accuracy
    created = ""
    if meta is not None and meta.created:
        created = meta.created[:16].replace("T", " ")
    return ModelEntry(path, name, accuracy, created, shipped)


def same_file(a: str | Path | None, b: str | Path | None) -> bool:
    """Whether two model paths name the same file (either may be missing)."""
    if not a or not b:
        return False
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def model_display_name(path: str | Path) -> str:
    """A short name for the status bar: the file name, or "Run <folder>" for a Retrain run's model."""
    path = Path(path)
    run = RunDir(path.parent)
    if not same_file(path, SHIPPED_MODEL) and path in (run.best, run.last):
        return f"Run {path.parent.name}"
    return path.name


def shipped_entry() -> ModelEntry:
    entry = _entry(SHIPPED_MODEL, "Shipped model", shipped=True)
    assert entry is not None
    return entry


def finished_runs(root: Path | None = None) -> list[ModelEntry]:
    """Finished runs, newest first."""
    root = root or runs_dir()
    if not root.is_dir():
        return []
    entries = []
    for run in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        folder = RunDir(run)
        if folder.best.is_file() and folder.finished:
            entry = _entry(folder.best, model_display_name(folder.best), shipped=False)
            if entry:
                entries.append(entry)
    return entries


def list_models(root: Path | None = None) -> list[ModelEntry]:
    """The shipped model first, then finished runs, newest first."""
    return [shipped_entry(), *finished_runs(root)]


def resumable_runs(root: Path | None = None) -> list[Path]:
    """Run folders that stopped before they finished and that no process trains now, newest first."""
    root = root or runs_dir()
    if not root.is_dir():
        return []
    runs = [r for r in root.iterdir() if RunDir(r).stopped]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


@dataclass(frozen=True)
class StoppedRun:
    """A run that stopped before its end, as the Retrain dialog offers it to Resume."""

    path: Path
    epochs_done: int
    epochs: int | None  # planned; None when its settings cannot be read
    data: str | None
    photos: bool  # trained on the faces found in photos (--detect)

    def describe(self) -> str:
        of = f" of {self.epochs}" if self.epochs else ""
        on = f" on {Path(self.data).name}{' (photos)' if self.photos else ''}" if self.data else ""
        return f"{self.path.name}: stopped after {self.epochs_done}{of} epoch(s){on}"


def last_stopped_run(root: Path | None = None) -> StoppedRun | None:
    """The newest run that can go on (:func:`resumable_runs`), with what it was training."""
    runs = resumable_runs(root)
    if not runs:
        return None
    folder = RunDir(runs[0])
    settings = folder.settings()
    epochs, data = settings.get("epochs"), settings.get("data")
    return StoppedRun(folder.path, folder.epochs_done(), epochs if isinstance(epochs, int) else None,
                      data if isinstance(data, str) else None, settings.get("detect") is True)  # fmt: skip


def new_run_dir(root: Path | None = None) -> Path:
    return RunDir.new(root or runs_dir()).path


def trainer_command(args: list[str]) -> tuple[str, list[str]]:
    """Program and arguments that run ``train_emotion.py <args>`` in a separate process.

    A frozen app has no script and no interpreter to run one: its own executable takes a
    ``train`` / ``evaluate`` sub-command instead.
    """
    if getattr(sys, "frozen", False):
        # A windowed Windows executable has no stdout to report progress on: use the console
        # companion that build.spec puts beside it, when it is there.
        exe = Path(sys.executable)
        cli = exe.with_name(f"EmotionLens-cli{exe.suffix}")
        return str(cli if cli.is_file() else exe), list(args)
    return sys.executable, [str(resource_path("train_emotion.py")), *args]
