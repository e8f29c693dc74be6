"""The trainer's progress events: one dataclass per kind, and their JSON-lines form.

The trainer emits these objects; the terminal printer (:mod:`model.progress`) and the app's Retrain
dialog consume them. Across a process boundary (``train_emotion.py train --progress-jsonl -``, which the
dialog reads) each is one JSON object per line: its fields, plus ``"event"`` (the kind) and
``"version"``. Readers must ignore kinds and fields they do not know, so a newer trainer can add them;
a change that removes or renames a field raises :data:`VERSION`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

#: The JSON-lines protocol version, in every line.
VERSION = 1


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "version": VERSION, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class Start(Event):
    kind: ClassVar[str] = "start"
    run_dir: str
    epochs: int
    initial_epoch: int  # epochs already done (a resumed run)
    steps: int  # batches per epoch
    train_size: int
    val_size: int
    validation: str  # how the validation split was chosen
    device: str
    arch: str
    params: int
    skipped: int  # bad rows or images skipped (--skip-bad)


@dataclass(frozen=True)
class Teacher(Event):
    kind: ClassVar[str] = "teacher"
    models: list[str]
    seconds: float
    train_accuracy: float  # the teachers' accuracy on the training faces
    mean_confidence: float


@dataclass(frozen=True)
class EpochBegin(Event):
    kind: ClassVar[str] = "epoch_begin"
    epoch: int  # 1-based
    epochs: int
    steps: int


@dataclass(frozen=True)
class Batch(Event):
    """At most two a second, and after the last batch of an epoch."""

    kind: ClassVar[str] = "batch"
    epoch: int
    epochs: int
    batch: int  # 1-based
    steps: int
    loss: float
    accuracy: float
    elapsed: float  # seconds since the epoch began


@dataclass(frozen=True)
class Epoch(Event):
    kind: ClassVar[str] = "epoch"
    epoch: int
    epochs: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float
    best_val_accuracy: float

    def history_row(self) -> dict[str, float]:
        """The row of ``history.csv`` this epoch wrote."""
        keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
        return {key: getattr(self, key) for key in keys}


@dataclass(frozen=True)
class Checkpoint(Event):
    kind: ClassVar[str] = "checkpoint"
    epoch: int
    path: str  # last.keras: resumable
    best: bool  # this epoch is the best so far
    best_path: str
    val_accuracy: float


@dataclass(frozen=True)
class AverageBegin(Event):
    kind: ClassVar[str] = "average_begin"
    epochs: list[int]  # [first, last]
    count: int


@dataclass(frozen=True)
class Average(Event):
    kind: ClassVar[str] = "average"
    epochs: list[int]
    count: int
    val_accuracy: float
    best: bool  # the average became best.keras
    seconds: float


@dataclass(frozen=True)
class Done(Event):
    kind: ClassVar[str] = "done"
    run_dir: str
    best_model: str
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    metrics: str
    accuracy: float | None
    compare_model: str | None
    compare_accuracy: float | None


@dataclass(frozen=True)
class Cancelled(Event):
    kind: ClassVar[str] = "cancelled"
    epoch: int | None  # the last complete epoch, kept (None when the trainer was interrupted before it knew)
    run_dir: str | None
    message: str = ""


@dataclass(frozen=True)
class Error(Event):
    kind: ClassVar[str] = "error"
    message: str


KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (Start, Teacher, EpochBegin, Batch, Epoch, Checkpoint, AverageBegin, Average, Done, Cancelled, Error)
}


def from_dict(data: dict[str, Any]) -> Event | None:
    """The event a JSON object describes; None for a kind this version does not know."""
    cls = KINDS.get(data.get("event", ""))
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in data.items() if key in names})


def from_json(line: str) -> Event | None:
    """Parse one line of ``--progress-jsonl``; ValueError when it is not a JSON object."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object: {line[:80]!r}")
    return from_dict(data)
