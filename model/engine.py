"""Loading a model for inference on the right engine: LiteRT on the CPU, TensorFlow on a GPU.

The app, ``analyze`` and ``train_emotion.py evaluate`` all get their predictor from
:func:`load_predictor`, so ``evaluate`` without ``--model`` scores exactly what the app runs.

* ``device="cpu"``, or ``"auto"`` without a usable CUDA GPU: LiteRT. The process never
  imports TensorFlow, unless LiteRT is not installed or cannot run this model (then
  TensorFlow runs it, and :attr:`Predictor.warning` says why).
* ``device="gpu"``, or ``"auto"`` with an NVIDIA driver *and* TensorFlow's CUDA libraries
  installed (``pip install .[gpu]``): TensorFlow, as before. That is decided without
  importing TensorFlow, so a machine with no GPU never pays for it.

A ``.keras`` file without a current ``.tflite`` twin (a user's own model, an older run) is
converted once by the ``convert`` callable the caller passes (the app runs it in a child
process, so its own process stays free of TensorFlow) and cached by the ``.keras`` file's
hash in the user data folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.chatter import import_keras
from model.checkpoint import ModelMetadata, check_metadata, load_model
from model.data import Split
from model.litert import LiteRTError, LiteRTModel, file_sha256, litert_available, tflite_path
from model.metrics import Metrics, compute_metrics
from model.spec import INPUT_SHAPE, NUM_CLASSES
from model.userdata import user_data_dir

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "gpu")
#: ``EMOTION_LENS_ENGINE=tensorflow`` runs the model with TensorFlow even on the CPU: a way out if LiteRT
#: misbehaves on some machine, and the baseline of ``benchmarks/app_bench.py``.
ENGINE_ENV = "EMOTION_LENS_ENGINE"

#: ``convert(keras_path, tflite_out)``: writes ``tflite_out`` or raises (ModelLoadError: the model is unusable).
Converter = Callable[[Path, Path], None]


class DeviceError(Exception):
    """The model cannot run where asked (e.g. ``--device gpu`` without a GPU)."""


@dataclass
class Predictor:
    """``predictor(batch) -> probabilities``, and what runs it, for the status bar and reports."""

    run: Callable[[np.ndarray], np.ndarray]
    path: Path  # the .keras model
    metadata: ModelMetadata
    engine: str  # "LiteRT", "TensorFlow", or "Keras (jax)" when training under JAX
    device: str  # "CPU" or "GPU (name)"
    tta: bool = False  # each face is averaged with its mirror image (flips)
    warning: str | None = None  # a fallback happened, in words a user can act on

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, np.float32)
        if batch.ndim == 3:
            batch = batch[..., None]
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        return self.run(batch)


def cache_dir() -> Path:
    return user_data_dir() / "litert-cache"


def cuda_gpu_present() -> bool:
    """An NVIDIA driver and TensorFlow's CUDA libraries are both installed (no TensorFlow import).

    The packaged app and a plain ``pip install`` carry a CPU-only TensorFlow; only the
    ``[gpu]`` extra installs the ``nvidia-cudnn`` wheels TensorFlow needs to see a GPU.
    """
    driver = shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia/gpus").is_dir()
    return driver and importlib.util.find_spec("nvidia") is not None and _has_cudnn()


def _has_cudnn() -> bool:
    with contextlib.suppress(ImportError, ValueError):
        return importlib.util.find_spec("nvidia.cudnn") is not None
    return False


def choose_engine(device: str) -> str:
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    forced = os.environ.get(ENGINE_ENV, "").strip().lower() == "tensorflow"
    if forced or device == "gpu" or (device == "auto" and cuda_gpu_present()) or not litert_available():
        return "tensorflow"
    return "litert"


def load_predictor(
    path: Path,
    *,
    device: str = "auto",
    tta: bool | None = None,
    convert: Converter | None = None,
    threads: int | None = None,
) -> Predictor:
    """Load the ``.keras`` model at ``path`` on the engine ``device`` calls for, warmed up.

    ``tta`` (flip test-time augmentation) defaults to what the model's metadata says. ``threads``:
    LiteRT's threads (default: one per core, at most 4); TensorFlow ignores it.
    Raises :class:`ModelLoadError` for a file that is not a usable model, and
    :class:`DeviceError` for a device that is not there.
    """
    path = Path(path).expanduser()
    engine = choose_engine(device)
    metadata = check_metadata(path)
    tta = metadata.tta if tta is None else tta
    warning = None
    if engine == "litert":
        try:
            return _litert_predictor(path, metadata, tta, convert or convert_in_process, threads)
        except LiteRTError as exc:
            warning = f"{exc}; running it with TensorFlow instead"
            log.warning("%s", warning)
    predictor = _keras_predictor(path, device, tta)
    if engine != "litert" and not litert_available() and device != "gpu":
        log.info("LiteRT is not installed: running the model with %s", predictor.engine)
    predictor.warning = warning
    return predictor


def _litert_predictor(
    path: Path, metadata: ModelMetadata, tta: bool, convert: Converter, threads: int | None
) -> Predictor:
    sha = file_sha256(path)
    twin, cached = tflite_path(path), cache_dir() / f"{sha}.tflite"
    candidates = [twin] if metadata.tflite_keras_sha256 == sha and twin.is_file() else []
    if twin.is_file() and not candidates:
        log.info("%s is stale or unverified (no matching hash in the metadata); not using it", twin)
    candidates += [cached] if cached.is_file() else []
    model = None
    for candidate in candidates:
        try:
            model = LiteRTModel(candidate, name=path.name, threads=threads)
            break
        except LiteRTError as exc:
            log.warning("%s; converting %s again", exc, path.name)
            if candidate == cached:
                cached.unlink(missing_ok=True)
    if model is None:
        log.info("converting %s for LiteRT (cached as %s)", path, cached)
        cached.parent.mkdir(parents=True, exist_ok=True)
        convert(path, cached)  # ModelLoadError: unusable model; anything else is a conversion failure
        model = LiteRTModel(cached, name=path.name, threads=threads)

    def run(batch: np.ndarray) -> np.ndarray:
        if not tta:
            return model.run(batch)
        both = model.run(np.concatenate([batch, batch[:, :, ::-1]]))  # face and mirror in one call
        return (both[: len(batch)] + both[len(batch) :]) / 2.0

    predictor = Predictor(run, path, metadata, "LiteRT", "CPU", tta)
    predictor(np.zeros((1, *INPUT_SHAPE), np.float32))  # allocate once, here, not on the first face
    return predictor


def convert_in_process(keras_path: Path, out: Path) -> None:
    """Convert with this process's TensorFlow (``evaluate``, the trainer): no child process needed."""
    from model.checkpoint import atomic_write
    from model.litert import convert

    loaded = load_model(keras_path)
    try:
        flatbuffer = convert(loaded.model)
    except Exception as exc:  # the converter raises many types; all mean "cannot convert"
        if isinstance(exc, LiteRTError):
            raise
        raise LiteRTError(f"{keras_path.name}: cannot convert it for LiteRT ({type(exc).__name__}: {exc})") from None
    atomic_write(out, lambda tmp: tmp.write_bytes(flatbuffer), suffix=".tflite")


def _select_tf_device(tf, device: str) -> tuple[str, str]:
    """The TensorFlow device string and a name for the user; GPU memory growth is switched on."""
    gpus = tf.config.list_physical_devices("GPU") if device != "cpu" else []
    if device == "gpu" and not gpus:
        raise DeviceError("--device gpu: TensorFlow sees no GPU here (use --device auto or cpu)")
    if not gpus:
        return "/CPU:0", "CPU"
    enable_memory_growth(tf)
    details = tf.config.experimental.get_device_details(gpus[0])
    return "/GPU:0", f"GPU ({details.get('device_name', gpus[0].name)})"


def enable_memory_growth(tf) -> None:
    """Take GPU memory as needed rather than all of it at once (shared by the app and the trainer)."""
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError):  # already initialised by an earlier model: keep its setting
            tf.config.experimental.set_memory_growth(gpu, True)


def _keras_predictor(path: Path, device: str, tta: bool) -> Predictor:
    """The model run by Keras: with TensorFlow (a GPU, or no LiteRT), or on Keras's own backend when
    training runs under JAX on a GPU machine without TensorFlow (``KERAS_BACKEND=jax``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's INFO logs; its start-up lines: import_keras
    keras = import_keras()
    from model.inference import make_predictor

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf_device, device_name = _select_tf_device(tf, device)
        engine, scope = "TensorFlow", tf.device(tf_device)
    else:
        engine, device_name, scope = f"Keras ({backend})", backend, contextlib.nullcontext()
    with scope:
        loaded = load_model(path)
        run = make_predictor(loaded.model, tta=tta)
        run(np.zeros((1, *INPUT_SHAPE), np.float32))  # trace once, here, not on the first face
    return Predictor(run, loaded.path, loaded.metadata, engine, device_name, tta)


def evaluate_model(model_path: Path, split: Split, *, tta: bool | None = None, device: str = "auto") -> Metrics:
    """Metrics of the model at ``model_path`` on ``split``, run on the engine the app would use.

    TTA as the model's metadata says by default.
    """
    from model.inference import predict_in_batches

    probs = predict_in_batches(load_predictor(model_path, device=device, tta=tta), split.x)
    return compute_metrics(split.y, probs.argmax(axis=1))
