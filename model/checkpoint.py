"""Saving and loading models that describe themselves.

A checkpoint is ``NAME.keras`` plus ``NAME.json`` beside it (labels, input size,
architecture, data, best validation accuracy, training config, versions, date).
Loading uses ``safe_mode=True`` (a model file cannot run code) and refuses a file whose
labels or shapes are not the app's, with a :class:`ModelLoadError` a user can act on.
Every write is atomic: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.chatter import import_keras
from model.precision import computes_in_float32, with_policy
from model.spec import INPUT_SHAPE, LABELS, NUM_CLASSES

log = logging.getLogger(__name__)

#: The model the app loads by default, committed in the repository.
SHIPPED_MODEL = Path(__file__).resolve().parent / "shipped" / "emotion_lens.keras"


class ModelLoadError(Exception):
    """A model file that is missing, unreadable or not an Emotion Lens model."""


@dataclass
class ModelMetadata:
    """What is known about a trained model; stored as JSON beside the ``.keras`` file."""

    arch: str
    labels: list[str] = field(default_factory=lambda: list(LABELS))
    input_shape: list[int] = field(default_factory=lambda: list(INPUT_SHAPE))
    dataset: str = ""
    split_sizes: dict[str, int] = field(default_factory=dict)
    validation: str = ""
    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    epochs: int = 0
    tta: bool = False
    averaged_epochs: list[int] = field(default_factory=list)  # [first, last] when the weights are an epoch average
    members: list[str] = field(default_factory=list)  # the runs of an ensemble (model.ensemble); empty: one net
    tflite_keras_sha256: str = ""  # the .keras file the .tflite beside it was converted from (model.litert)
    config: dict[str, Any] = field(default_factory=dict)
    keras_version: str = ""
    tensorflow_version: str = ""
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class LoadedModel:
    model: Any  # keras.Model; typed loosely so this module imports without Keras
    metadata: ModelMetadata
    path: Path


def metadata_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def atomic_write(path: Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it over ``path``.

    A crash at any point leaves either the old file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_model(
    model, path: Path, metadata: ModelMetadata | None, *, include_optimizer: bool = False, twin: bool = True
) -> None:
    """Write ``model`` (and ``metadata`` beside it) atomically.

    ``include_optimizer=True`` keeps the optimizer state, for resumable ``last`` checkpoints;
    a model for inference leaves it out (about 3x smaller), and gets its LiteRT twin
    (``NAME.tflite``, see :mod:`model.litert`) so the app can run it without TensorFlow.
    ``twin=False`` leaves the twin for later (:func:`add_tflite_twin`): a conversion takes seconds,
    and a training run rewrites ``best.keras`` at every better epoch.
    """
    import keras

    if metadata is not None:
        metadata.keras_version = keras.__version__
        metadata.tensorflow_version = _tf_version()

    if include_optimizer:
        saved = model
    elif computes_in_float32(model):
        # Keras 3 has no include_optimizer flag, and clone_model keeps the optimizer:
        # rebuild from the config, which gives an uncompiled model with the same weights.
        saved = keras.Model.from_config(model.get_config())
        saved.set_weights(model.get_weights())
    else:  # trained in mixed precision: a file to run is float32 (model.precision)
        saved = with_policy(model, "float32")
    if not twin:
        _drop_twin(Path(path))
    atomic_write(Path(path), saved.save, suffix=".keras")
    if metadata is not None:
        metadata.tflite_keras_sha256 = _try_tflite_twin(saved, Path(path)) if twin and not include_optimizer else ""
        atomic_write_json(metadata_path(Path(path)), asdict(metadata))


def _try_tflite_twin(model, path: Path) -> str:
    """:func:`write_tflite_twin`, or "" with a warning: a model the converter cannot take must not stop
    training or shipping; the app then converts it (or runs it with TensorFlow) when it loads it."""
    import keras

    if keras.backend.backend() != "tensorflow":  # conversion needs TensorFlow (JAX on a GPU)
        log.info("%s: no LiteRT twin under the %s backend", path, keras.backend.backend())
        return ""
    try:
        return write_tflite_twin(model, path)
    except Exception as exc:  # the converter raises many types
        log.warning("%s: no LiteRT twin (%s: %s)", path, type(exc).__name__, exc)
        return ""


def _drop_twin(path: Path) -> None:
    from model.litert import tflite_path

    tflite_path(path).unlink(missing_ok=True)  # never leave a twin of the previous file behind


def write_tflite_twin(model, path: Path) -> str:
    """Write the ``.tflite`` twin of the model saved at ``path``; return that ``.keras`` file's hash."""
    from model.litert import convert, file_sha256, tflite_path

    _drop_twin(path)
    flatbuffer = convert(model)
    atomic_write(tflite_path(path), lambda tmp: tmp.write_bytes(flatbuffer), suffix=".tflite")
    return file_sha256(path)


def add_tflite_twin(path: Path, *, lenient: bool = False) -> None:
    """Give the model saved at ``path`` its twin, and the twin's hash in its metadata; the ``.keras`` is not
    rewritten. ``lenient``: a model that will not convert gets a warning, as in :func:`save_model`."""
    path = Path(path)
    loaded = load_model(path)
    convert = _try_tflite_twin if lenient else write_tflite_twin
    loaded.metadata.tflite_keras_sha256 = convert(loaded.model, path)
    atomic_write_json(metadata_path(path), asdict(loaded.metadata))


def copy_model(src: Path, dst: Path) -> None:
    """Copy a model file, its LiteRT twin and its metadata, each atomically (the metadata last)."""
    src, dst = Path(src), Path(dst)
    for a, b in (
        (src, dst),
        (src.with_suffix(".tflite"), dst.with_suffix(".tflite")),
        (metadata_path(src), metadata_path(dst)),
    ):
        if a.exists():
            atomic_write(b, lambda tmp, a=a: shutil.copyfile(a, tmp))


def read_metadata(path: Path) -> ModelMetadata | None:
    meta = metadata_path(Path(path))
    if not meta.exists():
        return None
    try:
        return ModelMetadata.from_dict(json.loads(meta.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"{meta}: unreadable model metadata ({exc})") from None


def check_metadata(path: Path) -> ModelMetadata:
    """The metadata of the model file at ``path``, checked against the app's labels and input.

    Raises :class:`ModelLoadError` for a missing or non-``.keras`` file and for metadata that
    does not match. A model without metadata is assumed to use FER2013's label order.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    if path.suffix != ".keras":
        raise ModelLoadError(f"{path}: not a .keras model file")
    metadata = read_metadata(path)
    if metadata is None:
        log.warning("%s: no metadata file beside the model; assuming FER2013 label order", path)
        return ModelMetadata(arch="unknown")
    if list(metadata.labels) != list(LABELS):
        raise ModelLoadError(f"{path}: the model's labels {metadata.labels} are not {list(LABELS)}")
    if list(metadata.input_shape) != list(INPUT_SHAPE):
        raise ModelLoadError(f"{path}: the model's input shape {metadata.input_shape} is not {list(INPUT_SHAPE)}")
    return metadata


def load_model(path: str | Path, *, compile: bool = False) -> LoadedModel:
    """Load and check a model file; raise :class:`ModelLoadError` if it is not usable."""
    path = Path(path).expanduser()
    metadata = check_metadata(path)
    keras = import_keras()
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad file; all mean "unusable"
        raise ModelLoadError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from None
    in_shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    out_shape = tuple(model.outputs[0].shape[1:]) if getattr(model, "outputs", None) else None
    if in_shape != INPUT_SHAPE:
        raise ModelLoadError(f"{path}: the model takes input {in_shape}, not {INPUT_SHAPE} (48x48 grayscale faces)")
    if out_shape != (NUM_CLASSES,):
        raise ModelLoadError(f"{path}: the model gives {out_shape} outputs, not ({NUM_CLASSES},) emotions")
    if metadata.arch == "unknown":
        metadata.arch = getattr(model, "name", "unknown")
    return LoadedModel(model, metadata, path)


def _tf_version() -> str:
    try:
        import tensorflow as tf

        return tf.__version__
    except ImportError:  # another Keras backend
        return ""
