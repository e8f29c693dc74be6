"""Batched, compiled inference shared by evaluation and the app.

``model.predict`` costs ~100 ms of fixed overhead per call on this CPU; a
``tf.function`` with a fixed input signature costs a few ms for a batch of faces.
Horizontal-flip test-time augmentation (average of the face and its mirror image)
is applied here, in one place, when asked.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from model.spec import INPUT_SHAPE


def make_predictor(model, *, tta: bool = False, tf_function: bool | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Return ``f(batch) -> probabilities`` for (N, 48, 48, 1) faces, values 0-255.

    The returned function returns a ``float32`` numpy array of shape (N, 7). Under TensorFlow
    (``tf_function`` None or True) it is traced once (``autograph=False``, any batch size); under
    another Keras backend (JAX, for training on a GPU that TensorFlow does not see) it
    is the model's own compiled ``predict_on_batch``.
    """
    import keras

    if tf_function is None:
        tf_function = keras.backend.backend() == "tensorflow"
    if tf_function:
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)], autograph=False)
        def _traced(x):
            probs = model(x, training=False)
            if tta:
                probs = (probs + model(tf.reverse(x, axis=[2]), training=False)) / 2.0
            return probs

        def call(x: np.ndarray) -> np.ndarray:
            return _traced(tf.constant(x)).numpy()
    else:

        def call(x: np.ndarray) -> np.ndarray:
            probs = np.asarray(model.predict_on_batch(x), np.float32)
            if tta:
                probs = (probs + np.asarray(model.predict_on_batch(x[:, :, ::-1].copy()), np.float32)) / 2.0
            return probs

    def predict(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, np.float32)
        if batch.ndim == 3:
            batch = batch[..., None]
        if len(batch) == 0:
            return np.zeros((0, model.outputs[0].shape[-1]), np.float32)
        return call(batch)

    return predict


def predict_in_batches(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Run ``predict`` over ``x`` in chunks, so a whole data set does not sit in one tensor."""
    return np.concatenate([predict(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
