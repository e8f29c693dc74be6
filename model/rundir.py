"""A training run's folder: the one place that knows its file names and how runs are named.

- ``config.json``   the :class:`model.training.TrainConfig` it was started with
- ``last.keras``    model *with* optimizer state, written atomically every epoch (resumable)
- ``state.json``    epoch reached, best validation accuracy, early-stopping counter, history
- ``best.keras``    inference model (+ ``best.json`` metadata) whenever validation improves; its LiteRT twin
                    ``best.tflite`` when the run ends
- ``best_epoch.keras``  the best single epoch, when ``best.keras`` becomes a weight average
- ``history.csv``   one row per epoch
- ``average.npz``   the running mean of the weights (``--average-from``); at the end ``average.keras``
- ``teacher.npy``   the teachers' probabilities for the training faces (``--teacher``), computed once;
                    ``teacher.json`` says which faces (a hash), so another run can reuse them safely
- ``faces.npz``     the faces found in the photos (``--detect``), so a resumed run does not look for them again
- ``metrics.json``, ``curves.png``, ``confusion.png``  written when the run finishes
- ``lock``          held by the process training the run (an OS lock, gone with the process), so a second
                    trainer (another app window, the command line) cannot write the same files
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO

from model.checkpoint import atomic_write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def new(cls, root: Path) -> RunDir:
        """A new folder under ``root`` named for the time: ``20261127-131500`` (``-2``, ``-3``... on a clash)."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path, i = Path(root) / stamp, 1
        while path.exists():
            i += 1
            path = Path(root) / f"{stamp}-{i}"
        return cls(path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def last(self) -> Path:
        return self.path / "last.keras"

    @property
    def state(self) -> Path:
        return self.path / "state.json"

    @property
    def best(self) -> Path:
        return self.path / "best.keras"

    @property
    def best_epoch(self) -> Path:
        return self.path / "best_epoch.keras"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def average_state(self) -> Path:
        return self.path / "average.npz"

    @property
    def average(self) -> Path:
        return self.path / "average.keras"

    @property
    def teacher(self) -> Path:
        return self.path / "teacher.npy"

    @property
    def faces(self) -> Path:
        return self.path / "faces.npz"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def resumable(self) -> bool:
        """It holds a run that can go on (``--resume``): its settings and where it stopped."""
        return self.config.is_file() and self.state.is_file()

    @property
    def finished(self) -> bool:
        return self.metrics.is_file()

    @property
    def lock(self) -> Path:
        return self.path / "lock"

    @property
    def stopped(self) -> bool:
        """It stopped before its end (cancelled, failed, killed) and nothing trains it now: ``--resume`` can go on."""
        return self.resumable and not self.finished and not self.in_use()

    def in_use(self) -> bool:
        """A process, this one or another, is training the run now."""
        if self.path.resolve() in _HELD:
            return True
        if not self.lock.is_file():
            return False
        try:
            with self.lock.open("a+") as fh:
                if not _try_lock(fh):
                    return True
                _unlock(fh)
        except OSError:  # a file system without locks, or a folder we may not write: not known to be in use
            return False
        return False

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the run's lock while training it; raise :class:`FileExistsError` if another process holds it.

        An OS lock, so a trainer that is killed or crashes releases it with its process, and its run stays
        resumable. Held again by the same process (the command line, then :func:`model.training.train`), it is
        already held: one trainer per process, on its main thread. On a file system without locks (some network
        mounts) the run goes on unlocked, with a warning. A folder made here and left with nothing but the lock
        (the run failed before its first epoch) is removed.
        """
        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        if key in _HELD:
            yield
            return
        try:
            with self.lock.open("a+") as fh:
                try:
                    held = _try_lock(fh, wait=2.0)  # a probe (in_use) holds it for an instant
                except OSError as exc:
                    log.warning("%s: cannot lock the run folder (%s); make sure no other trainer uses it", self, exc)
                    held = None
                if held is False:
                    raise FileExistsError(f"{self.path} is being trained by another process; wait for it or stop it")
                _HELD.add(key)
                try:
                    yield
                finally:
                    _HELD.discard(key)
                    if held:
                        _unlock(fh)
        finally:
            if created and [p.name for p in self.path.iterdir()] == [self.lock.name]:
                try:
                    self.lock.unlink()
                    self.path.rmdir()
                except OSError:
                    pass

    def epochs_done(self) -> int:
        """Complete epochs saved (0 when there is no readable state)."""
        try:
            return int(json.loads(self.state.read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def settings(self) -> dict:
        """``config.json`` as it is stored ({} when it cannot be read): for showing a run, not for training it
        (:func:`model.training.read_config` checks it)."""
        try:
            data = json.loads(self.config.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


#: Run folders this process holds (:meth:`RunDir.hold`).
_HELD: set[Path] = set()
#: What a lock held by another process fails with (EACCES and EDEADLOCK: Windows' msvcrt).
_HELD_ERRNOS = {errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK)}


def _try_lock(fh: IO[str], wait: float = 0.0) -> bool:
    """Take the lock without blocking (trying again for ``wait`` seconds): False if another holder has it.

    Other errors (a file system without locks) are raised: they do not mean that the run is in use.
    """
    deadline = time.monotonic() + wait
    while True:
        fh.seek(0)
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in _HELD_ERRNOS:
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _unlock(fh: IO[str]) -> None:
    fh.seek(0)
    if os.name == "nt":
        import msvcrt

        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass
class RunState:
    """Where a run stands: ``state.json``, rewritten after every epoch and after the averaging."""

    epoch: int = 0  # complete epochs
    best_val_accuracy: float = -1.0
    best_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    average: dict | None = None  # once averaged: epochs, count, val_accuracy, best (it became best.keras)
    cancelled: bool = field(default=False, metadata={"saved": False})  # stopping after this batch

    @classmethod
    def load(cls, path: Path) -> RunState:
        data = json.loads(Path(path).read_text())
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def save(self, path: Path) -> None:
        atomic_write_json(path, {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("saved", True)})
