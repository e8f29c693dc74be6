"""The emotion classifier: loads a model once, warms it up once, then classifies all faces of a frame in one call.

TensorFlow is imported in :meth:`EmotionClassifier.load`, not at module import, so the GUI
can show its window (and a "loading model..." state) before TensorFlow has loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from model.checkpoint import SHIPPED_MODEL, ModelLoadError, ModelMetadata, load_model
from model.spec import INPUT_SHAPE, NUM_CLASSES

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "gpu")


class ClassifierError(Exception):
    """The classifier cannot run as asked (e.g. ``--device gpu`` without a GPU)."""


class Classifier(Protocol):
    """What the pipeline needs from a classifier; tests inject one that returns fixed probabilities."""

    name: str  # the model, for the status bar and the summary
    device: str  # where it runs, for the status bar

    def load(self) -> None: ...

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, 48, 48, 1) ``float32`` faces, values 0-255 -> (N, 7) probabilities."""
        ...


def _select_device(tf, device: str) -> tuple[str, str]:
    """The TensorFlow device string and a name for the user; GPU memory growth is switched on."""
    if device not in DEVICES:
        raise ClassifierError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    gpus = tf.config.list_physical_devices("GPU") if device != "cpu" else []
    if device == "gpu" and not gpus:
        raise ClassifierError("--device gpu: TensorFlow sees no GPU here (use --device auto or cpu)")
    if not gpus:
        return "/CPU:0", "CPU"
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # already initialised by an earlier model: keep its setting
            tf.config.experimental.set_memory_growth(gpu, True)
    details = tf.config.experimental.get_device_details(gpus[0])
    return "/GPU:0", f"GPU ({details.get('device_name', gpus[0].name)})"


class EmotionClassifier:
    """A Keras model behind a compiled batch call (:func:`model.inference.make_predictor`).

    With ``fallback=True`` (the GUI) a model file that will not load is replaced by the
    shipped model and :attr:`warning` says so; without it (the analyser) the error is raised.
    """

    def __init__(self, model_path: str | Path | None = None, *, device: str = "auto", fallback: bool = False) -> None:
        if device not in DEVICES:
            raise ClassifierError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
        self.model_path = Path(model_path).expanduser() if model_path else SHIPPED_MODEL
        self.requested_device, self.fallback = device, fallback
        self.name = self.model_path.name
        self.device = "not loaded"
        self.metadata: ModelMetadata | None = None
        self.warning: str | None = None
        self._predict: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def loaded(self) -> bool:
        return self._predict is not None

    def load(self) -> None:
        """Import TensorFlow, load and check the model, trace and warm up the batch call. Once."""
        if self._predict is not None:
            return
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off stderr
        import tensorflow as tf

        from model.inference import make_predictor

        tf_device, self.device = _select_device(tf, self.requested_device)
        with tf.device(tf_device):
            try:
                loaded = load_model(self.model_path)
            except ModelLoadError as exc:
                if not self.fallback or self.model_path == SHIPPED_MODEL:
                    raise
                self.warning = f"{exc}. Using the shipped model instead."
                log.warning("%s", self.warning)
                loaded = load_model(SHIPPED_MODEL)
            predict = make_predictor(loaded.model, tta=loaded.metadata.tta)
            predict(np.zeros((1, *INPUT_SHAPE), np.float32))  # trace once, here, not on the first face
        self.model_path, self.name, self.metadata = loaded.path, loaded.path.name, loaded.metadata
        self._predict = predict
        log.info("model %s loaded on %s (tta=%s)", loaded.path, self.device, loaded.metadata.tta)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        if self._predict is None:
            self.load()
        return self._predict(batch)
