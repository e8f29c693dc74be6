"""The training loop used by ``train_emotion.py`` and the app's Retrain button.

A run lives in one folder (:class:`model.rundir.RunDir` names its files). Every epoch writes
``last.keras`` (with optimizer state) and ``state.json`` atomically, so a killed run resumes where it
stopped. ``resume`` reloads them and continues with the same epoch count and learning-rate schedule
(the schedule is a function of the optimizer's step counter, which is saved with the optimizer).
Shuffling and augmentation are seeded by (seed, epoch, batch), so a resumed run sees the same
batches it would have seen. Progress goes out as :mod:`model.events` objects.

The parts live beside it: :mod:`model.augment`, :mod:`model.distill`, :mod:`model.ferplus` (soft
labels), :mod:`model.averaging`, :mod:`model.devices`, :mod:`model.reports`, :mod:`model.progress`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from model import events as ev
from model.augment import SCALE
from model.averaging import WeightAverage, averaged_model
from model.batches import make_batches, training_targets
from model.chatter import import_keras
from model.checkpoint import (
    ModelMetadata,
    add_tflite_twin,
    atomic_write_json,
    check_metadata,
    copy_model,
    load_model,
    save_model,
)
from model.data import Dataset, Split, load_dataset, train_val_splits
from model.devices import configure_devices
from model.distill import is_targets_file, saved_teacher_targets
from model.engine import evaluate_model
from model.metrics import Metrics, compute_metrics
from model.reports import write_history, write_plots
from model.rundir import RunDir, RunState
from model.spec import NUM_CLASSES

log = logging.getLogger(__name__)

Emit = Callable[[ev.Event], None]


@dataclass
class TrainConfig:
    """Every setting of a run; ``train_emotion.py train`` takes its defaults and help from here."""

    data: str
    out: str
    epochs: int = 30
    batch_size: int = 64
    arch: str = "vgg"
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum 0.9) or "adamw"
    lr: float | None = None  # None: 0.01 for SGD / 1e-3 AdamW from scratch, a fifth of that with init
    warmup_epochs: float = 1.0
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    class_weight: bool = False
    augment: bool = True
    erasing: float = 0.0  # fraction of training faces with a random rectangle of noise (random erasing)
    scale: tuple[float, float] = SCALE  # range of the zoom factor of the augmentation
    degrade: float = 0.0  # fraction of training faces given one camera fault (blur, noise, low resolution, JPEG)
    patience: int = 0  # epochs without improvement before stopping; 0 = never stop early
    val_fraction: float = 0.1
    seed: int = 0
    init: str | None = None
    skip_bad: bool = False
    average_from: int | None = None  # average the weights from this epoch on; None: the middle one; 0: off
    teacher: list[str] = field(default_factory=list)  # models whose predictions become part of the targets
    teacher_weight: float = 0.5  # the teachers' share of each training target (knowledge distillation)
    soft_labels: str | None = None  # FER+ votes file for the FER2013 rows (model.ferplus)
    soft_weight: float = 0.5  # the votes' share of each training target, the FER2013 label's is the rest
    precision: str = "auto"  # "auto": bfloat16 on a CPU that has it, float16 on a GPU (model.precision)
    detect: bool = False  # photos: train_emotion.py finds each one's face as the app does and passes the faces

    def check(self) -> None:
        """Raise ValueError naming the first setting that cannot make a run, before any data or Keras loads
        (``--batch-size 0`` divided by zero, ``--lr -1`` trained to NaN, ``--epochs -3`` "finished" at once)."""
        limits = (
            (self.epochs >= 1, f"--epochs {self.epochs} must be at least 1"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size} must be at least 1"),
            (self.lr is None or self.lr > 0, f"--lr {self.lr or 0:g} must be above 0"),
            (self.warmup_epochs >= 0, f"--warmup-epochs {self.warmup_epochs:g} must not be negative"),
            (self.weight_decay >= 0, f"--weight-decay {self.weight_decay:g} must not be negative"),
            (0 <= self.label_smoothing < 1, f"--label-smoothing {self.label_smoothing:g} must be in [0, 1)"),
            (0 <= self.erasing <= 1, f"--erasing {self.erasing:g} is not between 0 and 1"),
            (0 <= self.degrade <= 1, f"--degrade {self.degrade:g} is not between 0 and 1"),
            (0 < self.scale[0] <= self.scale[1], "--scale {:g} {:g} must be 0 < LOW <= HIGH".format(*self.scale)),
            (self.patience >= 0, f"--patience {self.patience} must not be negative (0: never stop early)"),
            (0 <= self.val_fraction < 1, f"--val-fraction {self.val_fraction:g} is not between 0 and 1"),
            (self.average_from is None or self.average_from >= 0, f"--average-from {self.average_from} is negative"),
            (len(self.teacher) < 2 or not any(map(is_targets_file, self.teacher)),
             "--teacher FILE.npy (another run's targets) cannot be mixed with other teachers"),
            (not self.teacher or 0 <= self.teacher_weight <= 1,
             f"--teacher-weight {self.teacher_weight:g} is not between 0 and 1"),
            (not self.soft_labels or 0 <= self.soft_weight <= 1,
             f"--soft-weight {self.soft_weight:g} is not between 0 and 1"),
            (not (self.soft_labels and self.detect),
             "--soft-labels has a vote per FER2013 row, which --detect's photos are not"),
        )  # fmt: skip
        for ok, problem in limits:
            if not ok:
                raise ValueError(problem)

    def averaging_start(self) -> int:
        """First epoch of the weight average (see :mod:`model.averaging`), 0 when there is none."""
        return self.epochs // 2 + 1 if self.average_from is None else self.average_from

    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        base = 0.01 if self.optimizer == "sgd" else 1e-3
        return base / 5 if self.init else base


@dataclass
class TrainResult:
    run_dir: Path
    best_model: Path
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    metrics: Metrics | None = None
    history: list[dict[str, float]] = field(default_factory=list)


class TrainingCancelled(Exception):
    pass


@dataclass
class _Run:
    """One run's fixed context, handed to the epoch callback and the averaging instead of a dozen arguments."""

    config: TrainConfig
    folder: RunDir
    dataset: Dataset
    train: Split
    val: Split
    val_desc: str
    state: RunState
    emit: Emit

    def metadata(self, epochs: int) -> ModelMetadata:
        return ModelMetadata(
            arch=self.config.arch,
            dataset=str(self.dataset.source),
            split_sizes={"train": len(self.train), "validation": len(self.val)},
            validation=self.val_desc,
            best_val_accuracy=self.state.best_val_accuracy,
            best_epoch=self.state.best_epoch,
            epochs=epochs,
            config=asdict(self.config),
        )


def _progress_callback(run: _Run, average: WeightAverage, batches, steps: int, should_stop: Callable[[], bool]):
    import keras

    config, folder, state, emit = run.config, run.folder, run.state, run.emit

    class Progress(keras.callbacks.Callback):
        """Emits events, writes checkpoints and history, and stops early or on request."""

        def __init__(self) -> None:
            super().__init__()
            self._last_batch_emit = 0.0
            self._epoch_start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.monotonic()
            batches.epoch = epoch  # seeds this epoch's shuffle and augmentation
            emit(ev.EpochBegin(epoch + 1, config.epochs, steps))

        def on_train_batch_end(self, batch, logs=None):
            now = time.monotonic()
            if should_stop():
                self.model.stop_training = True
                state.cancelled = True
            if now - self._last_batch_emit >= 0.5 or batch + 1 == steps:
                self._last_batch_emit = now
                logs = logs or {}
                emit(ev.Batch(batches.epoch + 1, config.epochs, batch + 1, steps, float(logs.get("loss", math.nan)),
                              float(logs.get("accuracy", math.nan)), now - self._epoch_start))  # fmt: skip

        def on_epoch_end(self, epoch, logs=None):
            if state.cancelled:
                return  # a partial epoch is not an epoch: keep the last complete checkpoint
            logs = dict(logs or {})
            improved = float(logs.get("val_accuracy", math.nan)) > state.best_val_accuracy
            if improved:
                state.best_val_accuracy = float(logs["val_accuracy"])
                state.best_epoch = epoch + 1
            done = ev.Epoch(
                epoch + 1, config.epochs, float(logs.get("loss", math.nan)), float(logs.get("accuracy", math.nan)),
                float(logs.get("val_loss", math.nan)), float(logs.get("val_accuracy", math.nan)),
                float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                time.monotonic() - self._epoch_start, state.best_val_accuracy,
            )  # fmt: skip
            state.history.append(done.history_row())
            if improved:
                meta = run.metadata(epoch + 1)
                save_model(self.model, folder.best, meta, twin=False)  # its twin when the run ends
                if config.averaging_start():  # best.keras may become the average at the end: keep the epoch too
                    save_model(self.model, folder.best_epoch, meta, twin=False)
            state.epoch = epoch + 1
            save_model(self.model, folder.last, None, include_optimizer=True)
            write_history(folder.history, state.history)
            state.save(folder.state)
            if config.averaging_start() and epoch + 1 >= config.averaging_start():
                average.add(self.model.get_weights(), epoch + 1)
                average.save(folder.average_state)
            emit(done)
            emit(ev.Checkpoint(epoch + 1, str(folder.last), improved, str(folder.best), done.val_accuracy))
            if config.patience and epoch + 1 - state.best_epoch >= config.patience:
                state.stopped_early = True
                self.model.stop_training = True

    return Progress()


def check_inputs(config: TrainConfig, *, resume: bool = False, compare: str | Path | None = None) -> None:
    """Bad options and model files fail here, before Keras and TensorFlow take seconds to load (and before
    ``train_emotion.py train --detect`` spends minutes finding faces)."""
    config.check()
    for model in [] if resume else [config.init, *config.teacher]:  # a resumed run has these in its folder
        if model in config.teacher and is_targets_file(model):  # another run's teacher.npy (model.distill)
            if not Path(model).is_file():
                raise FileNotFoundError(f"{model}: no such file")
        elif model:
            check_metadata(Path(model))
    if compare:  # used at the end of the run: a missing file should not wait hours to be found
        check_metadata(Path(compare))


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    emit: Emit | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    dataset: Dataset | None = None,
    compare: str | Path | None = None,
) -> TrainResult:
    """Train (or resume) a run in ``config.out``; return where the best model is.

    ``compare`` is a model (the one in use) to evaluate on the same validation split at
    the end, so the new model can be judged against it on equal terms.

    ``emit`` receives :mod:`model.events` objects. ``should_stop`` is polled after every batch;
    when it returns True the run stops after that batch, keeps its last complete-epoch
    checkpoint and raises :class:`TrainingCancelled`.
    """
    check_inputs(config, resume=resume, compare=compare)
    with RunDir(Path(config.out)).hold():  # one trainer per run folder
        dataset = dataset or load_dataset(config.data, skip_bad=config.skip_bad)
        keras = import_keras()
        previous = keras.mixed_precision.global_policy()  # model.devices sets the run's
        try:
            return _train(config, resume, emit, should_stop, dataset, compare)
        finally:
            keras.mixed_precision.set_global_policy(previous)


def _train(
    config: TrainConfig,
    resume: bool,
    emit: Emit | None,
    should_stop: Callable[[], bool],
    dataset: Dataset,
    compare: str | Path | None,
) -> TrainResult:
    import keras

    emit = emit or (lambda event: None)
    folder = RunDir(Path(config.out))
    folder.path.mkdir(parents=True, exist_ok=True)
    train_split, val_split, val_desc = train_val_splits(dataset, val_fraction=config.val_fraction, seed=config.seed)
    if config.soft_labels:  # a votes file that does not fit fails now, not after the model is built
        training_targets(train_split, config)
    strategy, device = configure_devices(config.precision)
    keras.utils.set_random_seed(config.seed)
    steps = math.ceil(len(train_split) / config.batch_size)

    atomic_write_json(folder.config, asdict(config))  # a resume may change --epochs or --average-from
    if resume:
        state = RunState.load(folder.state)
        with strategy.scope():
            model = load_model(folder.last, compile=True).model
    else:
        state = RunState()
        from model.network import build_for_training  # loads Keras: not when model.training is imported

        model = build_for_training(config, steps, strategy)
    run = _Run(config, folder, dataset, train_split, val_split, val_desc, state, emit)

    emit(ev.Start(str(folder), config.epochs, state.epoch, steps, len(train_split), len(val_split), val_desc, device,
                  config.arch, int(model.count_params()), dataset.skipped))  # fmt: skip
    average = WeightAverage()
    if resume and folder.average_state.exists():
        average = WeightAverage.load(folder.average_state)
        if average.last_epoch < state.epoch:  # killed between state.json and average.npz
            log.warning("%s: the weight average misses epochs %d-%d", folder, average.last_epoch + 1, state.epoch)
    soft = saved_teacher_targets(folder.teacher, config.teacher, train_split, emit) if config.teacher else None
    batches = make_batches(train_split, config, soft)
    if state.epoch < config.epochs and not state.stopped_early:
        model.fit(
            batches,
            validation_data=(val_split.x.astype(np.float32), np.eye(NUM_CLASSES, dtype=np.float32)[val_split.y]),
            validation_batch_size=256,
            epochs=config.epochs,
            initial_epoch=state.epoch,
            callbacks=[_progress_callback(run, average, batches, steps, should_stop)],
            verbose=0,
        )
    if state.cancelled:
        emit(ev.Cancelled(state.epoch, str(folder)))
        raise TrainingCancelled(f"cancelled; {folder} holds epoch {state.epoch} and resumes from there")

    if average.count:
        _finish_average(model, average, run)
    metrics = compared = None
    if folder.best.exists():
        # The model the run offers gets its LiteRT twin once, now, not at every better epoch (seconds each).
        # A run stopped before this leaves a best.keras without one, which the app converts when it loads it.
        add_tflite_twin(folder.best, lenient=True)
        metrics = evaluate_model(folder.best, val_split)
        report = {"split": val_desc, **metrics.to_dict()}
        if compare:
            compared = evaluate_model(Path(compare), val_split)
            report["compared_with"] = {"model": str(compare), "accuracy": compared.accuracy}
        atomic_write_json(folder.metrics, report)
        write_plots(folder.path, state.history, metrics)
    averaged = state.average if average.count and state.average else {}
    result = TrainResult(
        folder.path,
        folder.best,
        averaged["val_accuracy"] if averaged.get("best") else state.best_val_accuracy,
        averaged["epochs"][1] if averaged.get("best") else state.best_epoch,
        state.epoch,
        state.stopped_early,
        metrics,
        state.history,
    )
    emit(ev.Done(str(folder), str(folder.best), result.best_val_accuracy, result.best_epoch, result.epochs_run,
                 result.stopped_early, str(folder.metrics), metrics.accuracy if metrics else None,
                 str(compare) if compare else None, compared.accuracy if compared else None))  # fmt: skip
    return result


def _finish_average(model, average: WeightAverage, run: _Run) -> None:
    """Turn the weight average into ``average.keras``; make it ``best.keras`` if it beats the best epoch."""
    from model.inference import make_predictor, predict_in_batches

    folder, state = run.folder, run.state
    epochs = [average.first_epoch, average.last_epoch]
    run.emit(ev.AverageBegin(epochs, average.count))
    started = time.monotonic()
    averaged = averaged_model(model, average, run.train.x, seed=run.config.seed)
    accuracy = compute_metrics(run.val.y, predict_in_batches(make_predictor(averaged), run.val.x).argmax(1)).accuracy
    meta = run.metadata(state.epoch)
    meta.averaged_epochs = epochs
    meta.best_val_accuracy, meta.best_epoch = accuracy, average.last_epoch
    save_model(averaged, folder.average, meta, twin=False)
    if folder.best.exists() and not folder.best_epoch.exists():
        copy_model(folder.best, folder.best_epoch)  # a run started without --average-from has only best.keras
    better = accuracy > state.best_val_accuracy  # the best single epoch's
    if better:
        save_model(averaged, folder.best, meta, twin=False)
    elif folder.best_epoch.exists():
        copy_model(folder.best_epoch, folder.best)  # a resumed run's earlier average may have been there
    state.average = {"epochs": epochs, "count": average.count, "val_accuracy": accuracy, "best": better}
    state.save(folder.state)
    run.emit(ev.Average(epochs, average.count, accuracy, better, time.monotonic() - started))


def read_config(run_dir: Path) -> TrainConfig:
    folder = RunDir(run_dir)
    if not folder.resumable:
        raise FileNotFoundError(f"{run_dir}: not a resumable run folder (no config.json/state.json)")
    data = json.loads(folder.config.read_text())
    return TrainConfig(**{k: v for k, v in data.items() if k in TrainConfig.__dataclass_fields__})
