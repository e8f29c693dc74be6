"""Model builders, selected by name.

Every model takes a batch of 48x48x1 ``float32`` faces with values 0-255 and returns
softmax probabilities in :data:`model.spec.LABELS` order. Scaling to 0-1 is the first
layer of the model (``Rescaling``), so callers never normalise.

Only built-in Keras layers are used: a file saved from these models loads with
``safe_mode=True`` and without importing this module. Keras is imported by the builders, not
here: ``train_emotion.py`` lists :data:`ARCHITECTURES` in its help and its argument errors,
which should not wait 5 s for Keras and TensorFlow to load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from model.spec import INPUT_SHAPE, NUM_CLASSES

if TYPE_CHECKING:
    import keras

    from model.training import TrainConfig


def _input() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    import keras
    from keras import layers

    inputs = keras.Input(shape=INPUT_SHAPE, name="face")
    return inputs, layers.Rescaling(1.0 / 255.0, name="scale_0_1")(inputs)


def _conv_bn(x, filters: int, kernel: int, strides: int = 1, name: str = ""):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_seed(weight_decay: float = 0.0) -> keras.Model:
    """The seed project's 12-conv all-convolutional ``EmotionRecognitionCNN`` (reference).

    conv 16-5, 16-5/2, 32-5, 32-5/2, 64-3, 64-3/2, 64-1, 128-3/2, 256-1, 128-3/2, 256-1,
    7-3/2, batch norm after each hidden conv, dropout 0.4 after the 48- and 24-pixel
    stages and 0.3 after the deeper ones, logits flattened: 0.56 M params, 44 MFLOP.
    """
    import keras
    from keras import layers

    del weight_decay  # the seed used none; accepted so all builders share a signature
    inputs, x = _input()
    plan = [  # (filters, kernel, stride, dropout after)
        (16, 5, 1, None), (16, 5, 2, 0.4),
        (32, 5, 1, None), (32, 5, 2, 0.4),
        (64, 3, 1, None), (64, 3, 2, 0.3), (64, 1, 1, None),
        (128, 3, 2, 0.3), (256, 1, 1, None),
        (128, 3, 2, 0.3), (256, 1, 1, None),
    ]  # fmt: skip
    for i, (filters, kernel, stride, drop) in enumerate(plan):
        x = _conv_bn(x, filters, kernel, stride, name=f"c{i + 1}")
        if drop:
            x = layers.Dropout(drop, name=f"drop{i + 1}")(x)
    x = layers.Conv2D(NUM_CLASSES, 3, strides=2, padding="same", name="c12_conv")(x)
    x = layers.GlobalAveragePooling2D(name="logits")(x)  # 1x1 spatial: a flatten
    outputs = layers.Softmax(name="probs")(x)
    return keras.Model(inputs, outputs, name="seed")


def build_vgg(
    widths: tuple[int, ...] = (32, 64, 128, 256),
    weight_decay: float = 5e-4,
    name: str = "vgg",
    first_convs: int = 1,
) -> keras.Model:
    """VGG-style net: ``first_convs`` convs at 48 px, then two 3x3 convs per stage at 24, 12 and 6 px.

    Batch norm and ReLU after each conv, max-pooling between stages, global average
    pooling, dropout and one dense layer. L2 weight decay on the kernels.
    """
    import keras
    from keras import layers

    reg = keras.regularizers.L2(weight_decay) if weight_decay else None
    inputs, x = _input()

    def conv(x, filters, name):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=reg, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    for i in range(first_convs):
        x = conv(x, widths[0], f"s1{chr(ord('a') + i)}")
    for stage, filters in enumerate(widths[1:], start=2):
        x = layers.MaxPooling2D(2, name=f"pool{stage - 1}")(x)
        x = conv(x, filters, f"s{stage}a")
        x = conv(x, filters, f"s{stage}b")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.4, name="drop")(x)
    x = layers.Dense(NUM_CLASSES, kernel_regularizer=reg, name="logits")(x)
    outputs = layers.Softmax(name="probs")(x)
    return keras.Model(inputs, outputs, name=name)


def build_vgg_wide(weight_decay: float = 5e-4) -> keras.Model:
    """``vgg`` with twice the filters at 48, 24 and 12 px (two convs at 48 px): 3.4x the compute, 1.6x the weights.

    661 MFLOP per face and 1.85 M parameters. The compute is spent where it is cheap in weights
    (the early, large feature maps), because two nets must fit in the shipped 20 MB and in the
    10 ms budget for 4 faces: measured on the 2-core machine with 8-bit weights on LiteRT, two of
    these take 7.1 ms (p95 7.7) for 4 faces, two ``vgg`` nets 2.2 ms.
    """
    return build_vgg((64, 128, 192, 256), weight_decay, name="vgg_wide", first_convs=2)


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "seed": build_seed,
    "vgg": build_vgg,
    "vgg_wide": build_vgg_wide,
}


def build_model(arch: str, **kwargs) -> keras.Model:
    """Build the architecture called ``arch`` (one of :data:`ARCHITECTURES`)."""
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}") from None
    return builder(**kwargs)


def build_for_training(config: TrainConfig, steps: int, strategy) -> keras.Model:
    """The run's model (new, or ``config.init`` to fine-tune), compiled with its optimizer and cosine schedule."""
    import keras

    from model.checkpoint import load_model
    from model.precision import with_policy

    with strategy.scope():
        if config.init:
            model = load_model(config.init).model
        else:
            kwargs = {"weight_decay": config.weight_decay} if config.arch != "seed" else {}
            model = build_model(config.arch, **kwargs)
        # The global policy (model.devices) for every layer, an --init model's too; float32 out.
        model = with_policy(model, keras.mixed_precision.global_policy().name)
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
