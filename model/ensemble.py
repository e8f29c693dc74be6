"""Several trained nets as one model: the mean of their probabilities.

An ensemble is an ordinary Keras model (each member a nested model, then ``Average``), so it is one
``.keras`` file with one LiteRT twin, and everything that runs a model (the app, ``analyze``,
``evaluate``, fine-tuning, Explain) runs it unchanged; LiteRT runs the members in the same call.
Two members without flips cost what one member with flips does (8 faces through a net for 4 faces).

Why: nets trained with different seeds or targets make different mistakes. Measured on 2026-11-27
(README, model card): FER2013 labels alone and FER+ crowd votes pull a net towards FER2013's PublicTest
or towards faces from elsewhere; averaging one of each keeps most of both.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from model.checkpoint import LoadedModel, ModelMetadata
from model.spec import INPUT_SHAPE


def build_ensemble(members: Sequence, name: str = "ensemble"):
    """A model whose output is the mean of ``members``' probabilities (each takes the same 48x48x1 faces)."""
    import keras

    if len(members) < 2:
        raise ValueError("an ensemble needs at least two models")
    inputs = keras.Input(shape=INPUT_SHAPE, name="face")
    outputs = []
    for i, member in enumerate(members):
        # A copy under its own name: two members may be the same architecture with the same layer names.
        clone = keras.Model.from_config({**member.get_config(), "name": f"member{i + 1}"})
        clone.set_weights(member.get_weights())
        outputs.append(clone(inputs))
    return keras.Model(inputs, keras.layers.Average(name="probs")(outputs), name=name)


def combine(members: Sequence[LoadedModel], names: Sequence[str]) -> tuple[Any, ModelMetadata]:
    """The ensemble of ``members`` (loaded models named ``names``) and its metadata.

    The metadata keeps each member's name and training settings; whether it runs with flips is the
    shipper's choice (``scripts/ship_model.py``).
    """
    model = build_ensemble([m.model for m in members])
    metadata = copy.deepcopy(members[0].metadata)
    metadata.arch = f"ensemble of {len(members)}: " + ", ".join(m.metadata.arch for m in members)
    metadata.members = list(names)
    metadata.config = {"members": {name: m.metadata.config for name, m in zip(names, members, strict=True)}}
    metadata.best_epoch = None
    metadata.averaged_epochs = []
    metadata.best_val_accuracy = None
    return model, metadata
