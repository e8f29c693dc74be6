"""Where training runs: GPUs (memory growth, a MirroredStrategy over several) or the CPU, and in what precision."""

from __future__ import annotations

import contextlib
import os
from typing import Any


def configure_devices(precision: str = "auto") -> tuple[Any, str]:
    """Memory growth on GPUs, a MirroredStrategy over several, and the global dtype policy.

    ``precision`` is one of :data:`model.precision.PRECISIONS`; the policy it picks
    (:func:`model.precision.training_policy`) becomes Keras's global one, which the caller
    restores when training ends. Returns the ``tf.distribute`` strategy (an object whose
    ``scope()`` does nothing with another Keras backend) and a human description of the devices.
    """
    import keras

    from model.precision import check_precision, training_policy

    if keras.backend.backend() != "tensorflow":  # JAX on a GPU: float32 unless bfloat16 is asked for
        check_precision(precision)
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
        return _NoStrategy(), _backend_devices(keras.backend.backend())
    import tensorflow as tf

    from model.engine import enable_memory_growth

    gpus = tf.config.list_physical_devices("GPU")
    enable_memory_growth(tf)
    policy = training_policy(precision, bool(gpus))
    keras.mixed_precision.set_global_policy(policy)
    strategy, device = _strategy(tf, gpus)
    return strategy, device if policy == "float32" else f"{device}, {policy.removeprefix('mixed_')}"


def _strategy(tf, gpus: list) -> tuple[Any, str]:
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
