"""Knowledge distillation: other models' predictions as part of the training targets (``--teacher``)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from model.checkpoint import atomic_write, atomic_write_json, load_model
from model.data import Split
from model.events import Event, Teacher
from model.spec import NUM_CLASSES

log = logging.getLogger(__name__)

Emit = Callable[[Event], None]


def teacher_targets(models: list[str], x: np.ndarray) -> np.ndarray:
    """The mean flip-averaged probabilities of ``models`` for faces ``x``: soft targets for distillation.

    A student trained on these (mixed with the true labels) learns which wrong answers are nearly
    right, e.g. that a face is Fear-or-Surprise, which one-hot labels of ambiguous FER2013 faces hide
    (Hinton et al. 2015). An ensemble of models, each with its mirror image, is the better teacher; the
    student keeps one model's cost.
    """
    from model.inference import make_predictor, predict_in_batches

    probs = np.zeros((len(x), NUM_CLASSES), np.float32)
    started = time.monotonic()
    for done, path in enumerate(models, start=1):
        probs += predict_in_batches(make_predictor(load_model(path).model, tta=True), x)
        elapsed = time.monotonic() - started  # minutes per teacher on a CPU: say how far it is
        left = elapsed / done * (len(models) - done)
        name = "/".join(Path(path).parts[-2:])  # run/best.keras: teachers are all best.keras
        log.info("teacher %d/%d done (%s), %.0f s; about %.0f s to go", done, len(models), name, elapsed, left)
    return probs / max(len(models), 1)


def is_targets_file(path: str | Path) -> bool:
    """A ``--teacher`` that is another run's ``teacher.npy`` rather than a model."""
    return Path(path).suffix.lower() == ".npy"


def _faces_id(train: Split) -> str:
    """Which faces, in which order, with which labels: targets are only valid for the run they were made for."""
    digest = hashlib.sha256(np.ascontiguousarray(train.x).tobytes())
    digest.update(np.ascontiguousarray(train.y, np.int64).tobytes())
    return digest.hexdigest()


def _read_targets(path: Path, train: Split) -> np.ndarray:
    """Another run's targets, refused with the reason if they cannot be these faces' (see ``saved_teacher_targets``)."""
    try:
        soft = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a teacher.npy that can be read ({exc})") from exc
    if not isinstance(soft, np.ndarray) or soft.shape != (len(train), NUM_CLASSES):
        shape = getattr(soft, "shape", type(soft).__name__)
        raise ValueError(f"{path}: targets of shape {shape}, but this data has {len(train)} training faces and "
                         f"{NUM_CLASSES} classes: another run's data?")  # fmt: skip
    if not (np.isfinite(soft).all() and np.allclose(soft.sum(1), 1.0, atol=1e-3)):
        raise ValueError(f"{path}: its rows are not probabilities (each should sum to 1)")
    stamp = path.with_suffix(".json")
    if not stamp.exists():
        log.warning("%s: no %s beside it, so nothing shows these targets are for these faces in this order",
                    path, stamp.name)  # fmt: skip
    elif json.loads(stamp.read_text()).get("faces_sha256") != _faces_id(train):
        raise ValueError(f"{path}: made for other training faces (another data file, --seed or --val-fraction)")
    return soft.astype(np.float32)


def saved_teacher_targets(path: Path, models: list[str], train: Split, emit: Emit) -> np.ndarray:
    """The teachers' targets for ``train``, computed at the start of a run into ``path`` and read back on resume.

    ``models`` may instead be one ``teacher.npy`` of another run on the same data: its targets are taken as
    they are, so a second student needs neither the teachers' files nor their minutes (nor, on a lent GPU, the
    room they would take in the 64 MiB the device tool carries). ``teacher.json`` beside each file names the
    faces it is for (a hash of the training faces and labels, in order), so targets from another data file or
    split are refused instead of being paired with the wrong faces.
    """
    if path.exists():
        soft = np.load(path)
        if soft.shape == (len(train), NUM_CLASSES):
            return soft
        log.warning("%s: shape %s does not fit %d training faces; computing it again", path, soft.shape, len(train))
    started = time.monotonic()
    if len(models) == 1 and is_targets_file(models[0]):
        soft = _read_targets(Path(models[0]), train)
    else:
        log.info("the teachers' targets: %d model(s), each with its mirror image, on %d faces (once; kept in %s)",
                 len(models), len(train), path.name)  # fmt: skip
        soft = teacher_targets(models, train.x)
    atomic_write(path, lambda tmp: np.save(tmp, soft))
    atomic_write_json(path.with_suffix(".json"), {"faces": len(train), "faces_sha256": _faces_id(train)})
    emit(Teacher(models, time.monotonic() - started, float((soft.argmax(1) == train.y).mean()),
                 float(soft.max(1).mean())))  # fmt: skip
    return soft
