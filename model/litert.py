"""The model on LiteRT: a ``.tflite`` twin of every ``.keras`` model the app may load.

The ``.keras`` file stays the source of truth. Its ``.tflite`` twin is written beside it by
whoever saves an inference model (:func:`model.checkpoint.save_model`), and is tied to it by
the SHA-256 of the ``.keras`` file, stored in the model's metadata as ``tflite_keras_sha256``:
a ``.tflite`` whose ``.keras`` has changed since is stale and is never used.

Why LiteRT on the CPU: measured on the 2-core development machine with the shipped model, it
runs a batch of 4 faces in 1.7 ms against 4.9 ms for a traced TensorFlow call, and the process
that runs it never imports TensorFlow (~600 MB resident and seconds of start-up less).
Conversion needs TensorFlow; running needs only ``ai-edge-litert`` and numpy.

The twin stores its weights as 8-bit integers (dynamic-range quantisation: LiteRT quantises each
face's activations as it runs, so a face gets the same output whatever else is in the batch).
Measured with the shipped two-net ensemble (``benchmarks/model_bench.py``, 2 threads): 4 faces in
2.1 ms median against 8.5 ms with float weights, a file a quarter the size; on 12,000 faces from
PublicTest and the development sets its probabilities move by 0.017 at most (median 0.002) and the
top emotion changes on 0.4-0.6 % of them, the accuracies by under 0.1 point.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from model.chatter import held_back
from model.spec import INPUT_SHAPE, NUM_CLASSES

log = logging.getLogger(__name__)

#: Largest difference allowed between a converted model's probabilities and the Keras model's: 8-bit
#: weights move the shipped ensemble's by up to 0.017 on real faces; a broken conversion moves them far more.
MAX_CONVERSION_ERROR = 0.05


class LiteRTError(Exception):
    """A ``.tflite`` file that LiteRT cannot load or that is not an Emotion Lens model."""


def litert_available() -> bool:
    """Whether the LiteRT runtime is installed (it has no wheel for every platform)."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tflite_path(keras_path: Path) -> Path:
    """Where a ``.keras`` model's LiteRT twin lives: beside it, same name."""
    return Path(keras_path).with_suffix(".tflite")


def convert(model: Any) -> bytes:
    """Convert an in-memory Keras model to a LiteRT flatbuffer with 8-bit weights; check its outputs.

    TensorFlow is imported here. Keras prints where it saved a temporary artifact, and ~80 lines
    of its variables, on stdout, which is the trainer's JSON-lines channel: they go to the debug log.
    """
    with held_back(), contextlib.redirect_stdout(io.StringIO()) as said:
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: dynamic-range quantisation
        flatbuffer = converter.convert()
    log.debug("the converter said: %s", said.getvalue())
    probe = np.random.default_rng(0).integers(0, 256, (4, *INPUT_SHAPE)).astype(np.float32)
    expected = np.asarray(model(probe, training=False))
    got = LiteRTModel(flatbuffer, name="converted model").run(probe)
    error = float(np.abs(got - expected).max())
    if not error <= MAX_CONVERSION_ERROR:
        raise LiteRTError(f"the converted model differs from the Keras model by {error:.2g}")
    return flatbuffer


class LiteRTModel:
    """One LiteRT interpreter; :meth:`run` takes any batch size (the input is resized when it changes)."""

    def __init__(self, source: Path | bytes, *, name: str = "", threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.name = name or (Path(source).name if isinstance(source, Path) else "model")
        threads = threads or min(os.cpu_count() or 1, 4)
        try:
            if isinstance(source, Path):
                self._interpreter = Interpreter(model_path=str(source), num_threads=threads)
            else:
                self._interpreter = Interpreter(model_content=source, num_threads=threads)
            with held_back():  # the first interpreter of a process announces its XNNPACK delegate here
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise LiteRTError(f"{self.name}: LiteRT cannot load it ({exc})") from None
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise LiteRTError(f"{self.name}: expected one input and one output")
        self._input, self._output = inputs[0]["index"], outputs[0]["index"]
        in_shape, out_shape = tuple(inputs[0]["shape"][1:]), tuple(outputs[0]["shape"][1:])
        if in_shape != INPUT_SHAPE or out_shape != (NUM_CLASSES,) or inputs[0]["dtype"] != np.float32:
            raise LiteRTError(
                f"{self.name}: takes {in_shape} {inputs[0]['dtype'].__name__} and gives {out_shape}, "
                f"not {INPUT_SHAPE} float32 faces and ({NUM_CLASSES},) emotions"
            )
        self._batch = -1

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 48, 48, 1) ``float32`` faces, values 0-255 -> (N, 7) probabilities."""
        if len(batch) != self._batch:
            self._interpreter.resize_tensor_input(self._input, (len(batch), *INPUT_SHAPE), strict=False)
            self._interpreter.allocate_tensors()
            self._batch = len(batch)
        self._interpreter.set_tensor(self._input, np.ascontiguousarray(batch, np.float32))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()
