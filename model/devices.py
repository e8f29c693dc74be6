"""Where training runs: GPUs (memory growth, mixed precision, a MirroredStrategy over several) or the CPU."""

from __future__ import annotations

import contextlib
import os
from typing import Any


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
