"""The emotion classifier: loads a model once, warms it up once, then classifies all faces of a frame in one call.

The engine is chosen by :func:`model.engine.load_predictor`: LiteRT on the CPU, so the app's
process never imports TensorFlow; TensorFlow on a GPU. A ``.keras`` model without a current
``.tflite`` twin is converted in a child process (:func:`convert_in_child`), once, and cached.
Loading happens in :meth:`EmotionClassifier.load`, not at construction, so the GUI can show its
window (and a "loading model..." state) first.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Protocol

import numpy as np

from desktop.core.runs import trainer_command
from model.checkpoint import SHIPPED_MODEL, ModelLoadError, ModelMetadata
from model.engine import DEVICES, DeviceError, Predictor, load_predictor
from model.litert import LiteRTError
from model.spec import NUM_CLASSES

log = logging.getLogger(__name__)

__all__ = ["DEVICES", "Classifier", "ClassifierError", "EmotionClassifier", "convert_in_child"]

#: ``--device gpu`` without a GPU, an unknown device: the same error the engine raises.
ClassifierError = DeviceError

#: A conversion that takes longer than this has hung: the app gives up and says so.
CONVERSION_TIMEOUT_S = 300


class Classifier(Protocol):
    """What the pipeline and the GUI need from a classifier; tests inject one that returns fixed probabilities."""

    name: str  # the model, for the status bar and the summary
    device: str  # where and on what it runs, for the status bar ("CPU, LiteRT")
    model_path: Path | None  # the model file (None for a classifier without one)
    requested_device: str  # what the user asked for: "auto", "cpu" or "gpu"
    warning: str | None  # a fallback happened while loading, in words a user can act on

    def load(self) -> None: ...

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, 48, 48, 1) ``float32`` faces, values 0-255 -> (N, 7) probabilities."""
        ...


def convert_in_child(keras_path: Path, out: Path) -> None:
    """Convert ``keras_path`` to LiteRT in a child process (``train_emotion.py export``).

    The child imports TensorFlow; this process does not. Its "error: ..." line becomes the
    exception's message: exit code 2 means the model itself is unusable (ModelLoadError).
    """
    program, args = trainer_command(["export", "--model", str(keras_path), "--out", str(out)])
    try:
        done = subprocess.run(
            [program, *args], capture_output=True, text=True, timeout=CONVERSION_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise LiteRTError(f"{keras_path.name}: converting it for LiteRT took over {CONVERSION_TIMEOUT_S} s") from None
    except OSError as exc:
        raise LiteRTError(f"{keras_path.name}: cannot start the converter ({exc})") from None
    if done.returncode == 0 and out.is_file():
        return
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    why = lines[-1].removeprefix("error: ") if lines else f"the converter exited with code {done.returncode}"
    log.warning("conversion of %s failed (exit %d): %s", keras_path, done.returncode, done.stderr[-2000:])
    raise (ModelLoadError if done.returncode == 2 else LiteRTError)(why)


class EmotionClassifier:
    """A model behind one warmed-up batch call (:class:`model.engine.Predictor`).

    With ``fallback=True`` (the GUI) a model file that will not load is replaced by the
    shipped model and :attr:`warning` says so; without it (the analyser) the error is raised.
    ``threads``: LiteRT's threads (default one per core, at most 4), 1 for the app's second copy that explains.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: str = "auto",
        fallback: bool = False,
        threads: int | None = None,
    ) -> None:
        if device not in DEVICES:
            raise ClassifierError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
        self.model_path: Path | None = Path(model_path).expanduser() if model_path else SHIPPED_MODEL
        self.requested_device, self.fallback, self.threads = device, fallback, threads
        self.name = self.model_path.name
        self.device = "not loaded"
        self.metadata: ModelMetadata | None = None
        self.warning: str | None = None
        self._predictor: Predictor | None = None

    @property
    def loaded(self) -> bool:
        return self._predictor is not None

    @property
    def engine(self) -> str:
        return self._predictor.engine if self._predictor else ""

    def load(self) -> None:
        """Load and check the model, convert it if it must, warm up the batch call. Once."""
        if self._predictor is not None:
            return
        path = self.model_path or SHIPPED_MODEL
        try:
            predictor = self._load_predictor(path)
        except ModelLoadError as exc:
            if not self.fallback or path == SHIPPED_MODEL:
                raise
            self.warning = f"{exc}. Using the shipped model instead."
            log.warning("%s", self.warning)
            predictor = self._load_predictor(SHIPPED_MODEL)
        if predictor.warning:
            self.warning = " ".join(filter(None, [self.warning, predictor.warning]))
        self.model_path, self.name, self.metadata = predictor.path, predictor.path.name, predictor.metadata
        self.device = f"{predictor.device}, {predictor.engine}"
        self._predictor = predictor
        log.info("model %s loaded on %s", predictor.path, self.device)

    def _load_predictor(self, path: Path) -> Predictor:
        return load_predictor(path, device=self.requested_device, convert=convert_in_child, threads=self.threads)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        if self._predictor is None:
            self.load()
        return self._predictor(batch)
