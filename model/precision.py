"""The number format training computes in, and models that compute in another one.

A CPU with bfloat16 instructions (AVX512-BF16 or AMX) trains faster in Keras's ``mixed_bfloat16``
(weights stay float32, convolutions run in bfloat16): measured on the 2-core AMD EPYC with oneDNN,
a ``vgg`` step 1.2x and a ``vgg_wide`` step 1.44x faster. A GPU trains in ``mixed_float16``. Files a
model is *used* from (``best.keras``, the LiteRT twin) always compute in float32: the app, LiteRT's
converter and every CPU read them, and a float32 file loads the same everywhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

PRECISIONS = ("auto", "float32", "bfloat16")


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on a CPU whose flags name bfloat16 arithmetic (Linux; elsewhere False, the safe answer)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_precision(precision: str) -> None:
    """Raise ``ValueError`` unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")


def training_policy(precision: str, has_gpu: bool) -> str:
    """The Keras dtype policy a run trains in; ``precision`` is one of :data:`PRECISIONS`."""
    check_precision(precision)
    if precision == "float32":
        return "float32"
    if precision == "bfloat16":
        return "mixed_bfloat16"
    if has_gpu:
        return "mixed_float16"
    # Without oneDNN TensorFlow emulates bfloat16 on the CPU, which is slower than float32.
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    return "mixed_bfloat16" if onednn and cpu_has_bfloat16() else "float32"


def computes_in_float32(model: Any) -> bool:
    """Whether every layer of ``model`` computes in float32 (an input layer computes nothing)."""
    import keras

    return all(
        layer.dtype_policy.name == "float32" and (not hasattr(layer, "layers") or computes_in_float32(layer))
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    )


def with_policy(model: Any, policy: str) -> Any:
    """A copy of a functional ``model`` whose layers compute in ``policy``, with the same weights.

    Nested models (an ensemble's members) are rewritten too. Each model's output layer (the
    softmax, the ensemble's mean) stays float32 in every policy: probabilities and the loss need
    the precision, and it costs nothing. The copy has no optimizer.
    """
    import keras

    config = model.get_config()
    _rewrite(config, policy)
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def _rewrite(config: dict, policy: str) -> None:
    found = config["output_layers"]  # ["probs", 0, 0], or a list of those for several outputs
    outputs = {found[0]} if isinstance(found[0], str) else {name for name, *_ in found}
    for layer in config["layers"]:
        inner = layer["config"]
        if "layers" in inner:  # a model inside the model
            _rewrite(inner, policy)
        dtype = inner.get("dtype")
        if isinstance(dtype, dict):  # an InputLayer's is a plain "float32"
            dtype["config"] = {"name": "float32" if inner["name"] in outputs else policy}
