"""Knowledge distillation: other models' predictions as part of the training targets (``--teacher``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from model.checkpoint import atomic_write, load_model
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


def saved_teacher_targets(path: Path, models: list[str], train: Split, emit: Emit) -> np.ndarray:
    """The teachers' targets for ``train``, computed at the start of a run into ``path`` and read back on resume.

    ``models`` may instead be one ``teacher.npy`` of another run on the same data: its targets are taken as
    they are, so a second student needs neither the teachers' files nor their minutes (nor, on a lent GPU, the
    room they would take in the 64 MiB the device tool carries).
    """
    if path.exists():
        soft = np.load(path)
        if soft.shape == (len(train), NUM_CLASSES):
            return soft
        log.warning("%s: shape %s does not fit %d training faces; computing it again", path, soft.shape, len(train))
    started = time.monotonic()
    if len(models) == 1 and models[0].endswith(".npy"):
        soft = np.load(models[0])
        if soft.shape != (len(train), NUM_CLASSES):
            raise ValueError(f"{models[0]}: targets of shape {soft.shape}, but this data has {len(train)} "
                             f"training faces and {NUM_CLASSES} classes: another run's data?")  # fmt: skip
    else:
        log.info("the teachers' targets: %d model(s), each with its mirror image, on %d faces (once; kept in %s)",
                 len(models), len(train), path.name)  # fmt: skip
        soft = teacher_targets(models, train.x)
    atomic_write(path, lambda tmp: np.save(tmp, soft))
    emit(Teacher(models, time.monotonic() - started, float((soft.argmax(1) == train.y).mean()),
                 float(soft.max(1).mean())))  # fmt: skip
    return soft
