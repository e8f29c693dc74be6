"""The training loop used by ``train_emotion.py`` and the app's Retrain button.

A run folder holds everything about one run:

- ``config.json``   the :class:`TrainConfig` it was started with
- ``last.keras``    model *with* optimizer state, written atomically every epoch
- ``state.json``    epoch reached, best validation accuracy, early-stopping counter
- ``best.keras``    inference model (+ ``best.json`` metadata) whenever validation accuracy improves
- ``history.csv``   one row per epoch
- ``average.npz``   with ``--average-from``: the running mean of the weights since that epoch; at the
                    end it becomes ``average.keras``, and ``best.keras`` if it scores higher
- ``metrics.json``, ``curves.png``, ``confusion.png``  written at the end

``resume`` reloads ``last.keras`` and ``state.json`` and continues with the same epoch
count and learning-rate schedule (the schedule is a function of the optimizer's step
counter, which is saved with the optimizer). Shuffling and augmentation are seeded by
(seed, epoch, batch), so a resumed run sees the same batches it would have seen.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from model import ferplus
from model.averaging import WeightAverage, averaged_model
from model.checkpoint import (
    ModelMetadata,
    atomic_write,
    atomic_write_json,
    copy_model,
    load_model,
    save_model,
)
from model.data import TRAIN, Dataset, Split, load_dataset, train_val_splits
from model.metrics import Metrics, compute_metrics
from model.spec import INPUT_SIZE, LABELS, NUM_CLASSES

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]

AVERAGE_STATE = "average.npz"
BEST_EPOCH = "best_epoch.keras"  # the best single epoch, when best.keras is a weight average
TEACHER_TARGETS = "teacher.npy"  # the teachers' probabilities for the training faces, computed once per run


@dataclass
class TrainConfig:
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


# ---------------------------------------------------------------------------- data


def augment_batch(x: np.ndarray, rng: np.random.Generator, erasing: float = 0.0) -> np.ndarray:
    """One affine warp per face: flip, +-10 % shift and zoom, +-10 degree rotation.

    Borders are reflected, as a face crop continues past its edge. ~9,000 faces/s. With ``erasing``
    > 0, that fraction of the faces also get one rectangle (2-33 % of the face, aspect 0.3-3.3) filled
    with noise (random erasing, Zhong et al. 2017): a hand, a scarf or glasses hide part of real faces,
    and the network should not lean on any one region. Its random draws come after the warp's, so
    ``erasing=0`` gives the same faces as before the option existed.
    """
    out = np.empty_like(x)
    n = len(x)
    angles = rng.uniform(-10.0, 10.0, n)
    scales = rng.uniform(0.9, 1.1, n)
    shifts = rng.uniform(-0.1, 0.1, (n, 2)) * INPUT_SIZE
    flips = rng.random(n) < 0.5
    center = (INPUT_SIZE / 2 - 0.5, INPUT_SIZE / 2 - 0.5)
    for i in range(n):
        m = cv2.getRotationMatrix2D(center, angles[i], scales[i])
        m[:, 2] += shifts[i]
        img = x[i, :, :, 0]
        if flips[i]:
            img = img[:, ::-1]
        out[i, :, :, 0] = cv2.warpAffine(
            np.ascontiguousarray(img),
            m,
            (INPUT_SIZE, INPUT_SIZE),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
    if erasing > 0:
        erase = rng.random(n) < erasing
        areas = rng.uniform(0.02, 0.33, n) * INPUT_SIZE**2
        aspects = np.exp(rng.uniform(np.log(0.3), np.log(3.3), n))
        corners = rng.random((n, 2))
        for i in np.flatnonzero(erase):
            h = min(round(float(np.sqrt(areas[i] * aspects[i]))), INPUT_SIZE)
            w = min(round(float(np.sqrt(areas[i] / aspects[i]))), INPUT_SIZE)
            top, left = int(corners[i, 0] * (INPUT_SIZE - h + 1)), int(corners[i, 1] * (INPUT_SIZE - w + 1))
            out[i, top : top + h, left : left + w, 0] = rng.integers(0, 256, (h, w), dtype=np.uint8)
    return out


def class_weights(y: np.ndarray) -> np.ndarray:
    """Inverse-frequency weights normalised to mean 1 over the samples (sklearn's 'balanced')."""
    counts = np.bincount(y, minlength=NUM_CLASSES).astype(float)
    weights = np.divide(len(y), NUM_CLASSES * counts, out=np.zeros(NUM_CLASSES), where=counts > 0)
    return weights.astype(np.float32)


def teacher_targets(models: list[str], x: np.ndarray) -> np.ndarray:
    """The mean flip-averaged probabilities of ``models`` for faces ``x``: soft targets for distillation.

    A student trained on these (mixed with the true labels) learns which wrong answers are nearly
    right, e.g. that a face is Fear-or-Surprise, which one-hot labels of ambiguous FER2013 faces hide
    (Hinton et al. 2015). An ensemble of models, each with its mirror image, is the better teacher; the
    student keeps one model's cost.
    """
    from model.inference import make_predictor, predict_in_batches

    probs = np.zeros((len(x), NUM_CLASSES), np.float32)
    for path in models:
        probs += predict_in_batches(make_predictor(load_model(path).model, tta=True), x)
    return probs / max(len(models), 1)


def _teacher_targets(run_dir: Path, config: TrainConfig, train: Split, emit: Emit) -> np.ndarray:
    """The teachers' targets, computed at the start of a run and read back on resume."""
    path = run_dir / TEACHER_TARGETS
    if path.exists():
        soft = np.load(path)
        if soft.shape == (len(train), NUM_CLASSES):
            return soft
        log.warning("%s: shape %s does not fit %d training faces; computing it again", path, soft.shape, len(train))
    started = time.monotonic()
    soft = teacher_targets(config.teacher, train.x)
    atomic_write(path, lambda tmp: np.save(tmp, soft))
    emit({
        "event": "teacher", "models": config.teacher, "seconds": time.monotonic() - started,
        "train_accuracy": float((soft.argmax(1) == train.y).mean()), "mean_confidence": float(soft.max(1).mean()),
    })  # fmt: skip
    return soft


def _make_batches(train: Split, config: TrainConfig, soft: np.ndarray | None = None):
    import keras

    weights = class_weights(train.y) if config.class_weight else None
    targets = np.eye(NUM_CLASSES, dtype=np.float32)[train.y]
    if config.soft_labels:
        votes = ferplus.read_votes(config.soft_labels, TRAIN)
        targets = ferplus.mix_targets(train.y, votes, config.soft_weight)
    if soft is not None:
        targets = (1.0 - config.teacher_weight) * targets + config.teacher_weight * soft.astype(np.float32)

    class Batches(keras.utils.PyDataset):
        """Seeded shuffle and augmentation per (epoch, batch), from uint8 faces in memory."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self._order_epoch = -1
            self._order = np.arange(len(train))

        def __len__(self) -> int:
            return math.ceil(len(train) / config.batch_size)

        def __getitem__(self, index: int):
            if self._order_epoch != self.epoch:
                self._order = np.random.default_rng((config.seed, self.epoch)).permutation(len(train))
                self._order_epoch = self.epoch
            idx = self._order[index * config.batch_size : (index + 1) * config.batch_size]
            x = train.x[idx]
            if config.augment:
                x = augment_batch(x, np.random.default_rng((config.seed, self.epoch, index)), config.erasing)
            x = x.astype(np.float32)
            if weights is None:
                return x, targets[idx]
            return x, targets[idx], weights[train.y[idx]]

    return Batches()


# ---------------------------------------------------------------------------- devices


def configure_devices() -> tuple[Any, str]:
    """Memory growth and mixed precision on GPUs; a MirroredStrategy over several.

    Returns the ``tf.distribute`` strategy (an object whose ``scope()`` does nothing with
    another Keras backend) and a human description of the devices.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return _NoStrategy(), _backend_devices(keras.backend.backend())
    import tensorflow as tf

    from model.engine import enable_memory_growth

    gpus = tf.config.list_physical_devices("GPU")
    enable_memory_growth(tf)
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), f"{len(gpus)} GPUs (MirroredStrategy)"
    if gpus:
        return tf.distribute.get_strategy(), "GPU"
    mirror_cpus = int(os.environ.get("EMOTION_LENS_MIRROR_CPUS", "0") or 0)
    if mirror_cpus > 1:
        # For tests: the multi-device code path, on logical CPU devices (set before TF starts).
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * mirror_cpus)
        names = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(names), f"{len(names)} CPUs (MirroredStrategy)"
    return tf.distribute.get_strategy(), "CPU"


class _NoStrategy:
    """Stands in for ``tf.distribute``'s default strategy under another Keras backend (JAX)."""

    def scope(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


def _backend_devices(backend: str) -> str:
    """E.g. "gpu (jax)": where another backend computes (in full precision; the net is small)."""
    if backend == "jax":
        import jax

        return f"{jax.devices()[0].platform} (jax)"
    return backend


# ---------------------------------------------------------------------------- callbacks


def _progress_callback(
    emit: Emit,
    average: WeightAverage,
    run_dir: Path,
    batches,
    steps: int,
    state: dict,
    config: TrainConfig,
    train: Split,
    val: Split,
    val_desc: str,
    dataset: Dataset,
    should_stop: Callable[[], bool],
):
    import keras

    class Progress(keras.callbacks.Callback):
        """Emits events, writes checkpoints and history, and stops early or on request."""

        def __init__(self) -> None:
            super().__init__()
            self._last_batch_emit = 0.0
            self._epoch_start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.monotonic()
            batches.epoch = epoch  # seeds this epoch's shuffle and augmentation
            emit({"event": "epoch_begin", "epoch": epoch + 1, "epochs": config.epochs, "steps": steps})

        def on_train_batch_end(self, batch, logs=None):
            now = time.monotonic()
            if should_stop():
                self.model.stop_training = True
                state["cancelled"] = True
            if now - self._last_batch_emit >= 0.5 or batch + 1 == steps:
                self._last_batch_emit = now
                logs = logs or {}
                emit({
                    "event": "batch", "epoch": batches.epoch + 1, "epochs": config.epochs, "batch": batch + 1,
                    "steps": steps, "loss": float(logs.get("loss", float("nan"))),
                    "accuracy": float(logs.get("accuracy", float("nan"))),
                    "elapsed": now - self._epoch_start,
                })  # fmt: skip

        def on_epoch_end(self, epoch, logs=None):
            if state.get("cancelled"):
                return  # a partial epoch is not an epoch: keep the last complete checkpoint
            logs = dict(logs or {})
            row = {
                "epoch": epoch + 1,
                "loss": float(logs.get("loss", float("nan"))),
                "accuracy": float(logs.get("accuracy", float("nan"))),
                "val_loss": float(logs.get("val_loss", float("nan"))),
                "val_accuracy": float(logs.get("val_accuracy", float("nan"))),
                "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "seconds": time.monotonic() - self._epoch_start,
            }
            state["history"].append(row)
            improved = row["val_accuracy"] > state["best_val_accuracy"]
            if improved:
                state["best_val_accuracy"] = row["val_accuracy"]
                state["best_epoch"] = epoch + 1
                meta = _metadata(config, dataset, train, val, val_desc, state, epoch + 1)
                save_model(self.model, run_dir / "best.keras", meta)
                if config.averaging_start():  # best.keras may become the average at the end: keep the epoch too
                    save_model(self.model, run_dir / BEST_EPOCH, meta)
            state["epoch"] = epoch + 1
            save_model(self.model, run_dir / "last.keras", None, include_optimizer=True)
            _write_history(run_dir / "history.csv", state["history"])
            atomic_write_json(run_dir / "state.json", {k: v for k, v in state.items() if k != "cancelled"})
            if config.averaging_start() and epoch + 1 >= config.averaging_start():
                average.add(self.model.get_weights(), epoch + 1)
                average.save(run_dir / AVERAGE_STATE)
            emit({"event": "epoch", "epochs": config.epochs, **row, "best_val_accuracy": state["best_val_accuracy"]})
            emit(
                {
                    "event": "checkpoint",
                    "epoch": epoch + 1,
                    "path": str(run_dir / "last.keras"),
                    "best": improved,
                    "best_path": str(run_dir / "best.keras"),
                    "val_accuracy": row["val_accuracy"],
                }
            )
            if config.patience and epoch + 1 - state["best_epoch"] >= config.patience:
                state["stopped_early"] = True
                self.model.stop_training = True

    return Progress()


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)

    atomic_write(path, write)


def _metadata(
    config: TrainConfig, dataset: Dataset, train: Split, val: Split, val_desc: str, state: dict, epochs: int
) -> ModelMetadata:
    return ModelMetadata(
        arch=config.arch,
        dataset=str(dataset.source),
        split_sizes={"train": len(train), "validation": len(val)},
        validation=val_desc,
        best_val_accuracy=state["best_val_accuracy"],
        best_epoch=state["best_epoch"],
        epochs=epochs,
        config=asdict(config),
    )


# ---------------------------------------------------------------------------- training


def _build(config: TrainConfig, steps: int, strategy):
    import keras

    from model.network import build_model

    with strategy.scope():
        if config.init:
            model = load_model(config.init).model
        else:
            kwargs = {"weight_decay": config.weight_decay} if config.arch != "seed" else {}
            model = build_model(config.arch, **kwargs)
        total = max(config.epochs * steps, 1)
        warmup = min(int(config.warmup_epochs * steps), total - 1)
        lr = config.learning_rate()
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr / 10 if warmup else lr, decay_steps=total - warmup, alpha=0.01,
            warmup_target=lr if warmup else None, warmup_steps=warmup,
        )  # fmt: skip
        if config.optimizer == "sgd":
            optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
        elif config.optimizer == "adamw":
            optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {config.optimizer!r}; choose sgd or adamw")
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
        )
    return model


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

    ``emit`` receives progress events (dicts with an ``event`` key). ``should_stop`` is
    polled after every batch; when it returns True the run stops after that batch,
    keeps its last complete-epoch checkpoint and raises :class:`TrainingCancelled`.
    """
    import keras

    emit = emit or (lambda event: None)
    if config.teacher and not 0.0 <= config.teacher_weight <= 1.0:
        raise ValueError(f"--teacher-weight {config.teacher_weight:g} is not between 0 and 1")
    if config.soft_labels and not 0.0 <= config.soft_weight <= 1.0:
        raise ValueError(f"--soft-weight {config.soft_weight:g} is not between 0 and 1")
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    dataset = dataset or load_dataset(config.data, skip_bad=config.skip_bad)
    train_split, val_split, val_desc = train_val_splits(dataset, val_fraction=config.val_fraction, seed=config.seed)
    strategy, device = configure_devices()
    keras.utils.set_random_seed(config.seed)
    steps = math.ceil(len(train_split) / config.batch_size)

    atomic_write_json(run_dir / "config.json", asdict(config))  # a resume may change --epochs or --average-from
    if resume:
        state = json.loads((run_dir / "state.json").read_text())
        with strategy.scope():
            model = load_model(run_dir / "last.keras", compile=True).model
    else:
        state = {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "history": [], "stopped_early": False}
        model = _build(config, steps, strategy)

    emit({
        "event": "start", "run_dir": str(run_dir), "epochs": config.epochs, "initial_epoch": state["epoch"],
        "steps": steps, "train_size": len(train_split), "val_size": len(val_split), "validation": val_desc,
        "device": device, "arch": config.arch, "params": int(model.count_params()),
        "skipped": dataset.skipped,
    })  # fmt: skip
    average = WeightAverage()
    if resume and (run_dir / AVERAGE_STATE).exists():
        average = WeightAverage.load(run_dir / AVERAGE_STATE)
        if average.last_epoch < state["epoch"]:  # killed between state.json and average.npz
            log.warning("%s: the weight average misses epochs %d-%d", run_dir, average.last_epoch + 1, state["epoch"])
    soft = _teacher_targets(run_dir, config, train_split, emit) if config.teacher else None
    batches = _make_batches(train_split, config, soft)
    progress = _progress_callback(
        emit, average, run_dir, batches, steps, state, config, train_split, val_split, val_desc, dataset, should_stop
    )
    if state["epoch"] < config.epochs and not state.get("stopped_early"):
        model.fit(
            batches,
            validation_data=(val_split.x.astype(np.float32), np.eye(NUM_CLASSES, dtype=np.float32)[val_split.y]),
            validation_batch_size=256,
            epochs=config.epochs,
            initial_epoch=state["epoch"],
            callbacks=[progress],
            verbose=0,
        )
    if state.get("cancelled"):
        emit({"event": "cancelled", "epoch": state["epoch"], "run_dir": str(run_dir)})
        raise TrainingCancelled(f"cancelled; {run_dir} holds epoch {state['epoch']} and resumes from there")

    if average.count:
        _finish_average(model, average, run_dir, state, config, dataset, train_split, val_split, val_desc, emit)
    best = run_dir / "best.keras"
    metrics = compared = None
    if best.exists():
        metrics = evaluate_model(best, val_split)
        report = {"split": val_desc, **metrics.to_dict()}
        if compare:
            compared = evaluate_model(Path(compare), val_split)
            report["compared_with"] = {"model": str(compare), "accuracy": compared.accuracy}
        atomic_write_json(run_dir / "metrics.json", report)
        write_plots(run_dir, state["history"], metrics)
    averaged = state.get("average", {}) if average.count else {}
    result = TrainResult(
        run_dir,
        best,
        averaged["val_accuracy"] if averaged.get("best") else state["best_val_accuracy"],
        averaged["epochs"][1] if averaged.get("best") else state["best_epoch"],
        state["epoch"],
        bool(state.get("stopped_early")),
        metrics,
        state["history"],
    )
    emit(
        {
            "event": "done",
            "run_dir": str(run_dir),
            "best_model": str(best),
            "best_val_accuracy": result.best_val_accuracy,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early,
            "metrics": str(run_dir / "metrics.json"),
            "accuracy": metrics.accuracy if metrics else None,
            "compare_model": str(compare) if compare else None,
            "compare_accuracy": compared.accuracy if compared else None,
        }
    )
    return result


def _finish_average(
    model,
    average: WeightAverage,
    run_dir: Path,
    state: dict,
    config: TrainConfig,
    dataset: Dataset,
    train: Split,
    val: Split,
    val_desc: str,
    emit: Emit,
) -> None:
    """Turn the weight average into ``average.keras``; make it ``best.keras`` if it beats the best epoch."""
    from model.inference import make_predictor, predict_in_batches

    emit({"event": "average_begin", "epochs": [average.first_epoch, average.last_epoch], "count": average.count})
    started = time.monotonic()
    averaged = averaged_model(model, average, train.x, seed=config.seed)
    accuracy = compute_metrics(val.y, predict_in_batches(make_predictor(averaged), val.x).argmax(1)).accuracy
    meta = _metadata(config, dataset, train, val, val_desc, state, state["epoch"])
    meta.averaged_epochs = [average.first_epoch, average.last_epoch]
    meta.best_val_accuracy, meta.best_epoch = accuracy, average.last_epoch
    save_model(averaged, run_dir / "average.keras", meta)
    best, single = run_dir / "best.keras", run_dir / BEST_EPOCH
    if best.exists() and not single.exists():
        copy_model(best, single)  # a run started without --average-from has only best.keras
    better = accuracy > state["best_val_accuracy"]  # the best single epoch's
    if better:
        save_model(averaged, best, meta)
    elif single.exists():
        copy_model(single, best)  # a resumed run's earlier average may have been there
    state["average"] = {"epochs": [average.first_epoch, average.last_epoch], "count": average.count,
                        "val_accuracy": accuracy, "best": better}  # fmt: skip
    atomic_write_json(run_dir / "state.json", {k: v for k, v in state.items() if k != "cancelled"})
    emit({"event": "average", "epochs": [average.first_epoch, average.last_epoch], "count": average.count,
          "val_accuracy": accuracy, "best": better, "seconds": time.monotonic() - started})  # fmt: skip


def read_history(path: Path) -> list[dict[str, float]]:
    """The rows of a run's ``history.csv`` (empty when there is none yet)."""
    if not Path(path).exists():
        return []
    with Path(path).open(newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def read_config(run_dir: Path) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.exists() or not (Path(run_dir) / "state.json").exists():
        raise FileNotFoundError(f"{run_dir}: not a resumable run folder (no config.json/state.json)")
    data = json.loads(path.read_text())
    return TrainConfig(**{k: v for k, v in data.items() if k in TrainConfig.__dataclass_fields__})


# ---------------------------------------------------------------------------- evaluation and reports


def evaluate_model(model_path: Path, split: Split, *, tta: bool | None = None, device: str = "auto") -> Metrics:
    """Metrics of the model at ``model_path`` on ``split``, run on the engine the app would use.

    TTA as the model's metadata says by default.
    """
    from model.engine import load_predictor
    from model.inference import predict_in_batches

    probs = predict_in_batches(load_predictor(model_path, device=device, tta=tta), split.x)
    return compute_metrics(split.y, probs.argmax(axis=1))


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


class ProgressPrinter:
    """A human progress bar on a terminal stream (one line per epoch when not a terminal)."""

    def __init__(self, stream: IO[str] = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.t0 = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "start":
            self.stream.write(
                f"training {event['arch']} ({event['params']:,} params) on {event['device']}: "
                f"{event['train_size']} faces, validation {event['val_size']} ({event['validation']}), "
                f"epochs {event['initial_epoch'] + 1}-{event['epochs']}, {event['steps']} steps each\n"
            )
        elif kind == "batch" and self.tty:
            frac = event["batch"] / event["steps"]
            bar = "#" * int(frac * 30)
            eta = event["elapsed"] / max(frac, 1e-9) * (1 - frac)
            self.stream.write(
                f"\repoch {event['epoch']}/{event['epochs']} [{bar:<30}] {event['batch']}/{event['steps']} "
                f"loss {event['loss']:.4f} acc {event['accuracy']:.4f} eta {eta:4.0f}s "
            )
        elif kind == "epoch":
            prefix = "\r" if self.tty else ""
            self.stream.write(
                f"{prefix}epoch {event['epoch']}/{event['epochs']} loss {event['loss']:.4f} acc {event['accuracy']:.4f}"
                f" val_loss {event['val_loss']:.4f} val_acc {event['val_accuracy']:.4f} lr {event['lr']:.5f}"
                f" {event['seconds']:.0f}s (best {event['best_val_accuracy']:.4f})".ljust(110)
                + "\n"
            )
        elif kind == "teacher":
            self.stream.write(
                f"teacher targets from {len(event['models'])} model(s) in {event['seconds']:.0f} s: "
                f"{event['train_accuracy']:.2%} of the training faces right, mean confidence "
                f"{event['mean_confidence']:.2f}\n"
            )
        elif kind == "average_begin":
            first, last = event["epochs"]
            self.stream.write(
                f"averaging the weights of epochs {first}-{last}, measuring batch-norm statistics again\n"
            )
        elif kind == "average":
            first, last = event["epochs"]
            verdict = "the best model" if event["best"] else "not better than the best epoch"
            line = f"average of epochs {first}-{last}: val_acc {event['val_accuracy']:.4f} ({verdict})"
            self.stream.write(f"{line} {event['seconds']:.0f}s\n")
        elif kind == "done":
            self.stream.write(
                f"done: best validation accuracy {event['best_val_accuracy']:.4f} at epoch {event['best_epoch']}; "
                f"model {event['best_model']}\n"
            )
        self.stream.flush()
