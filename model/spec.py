"""What the model sees and says: the label list and the input size.

This is the single source of truth for both. Training, evaluation, the checkpoint
loader and the desktop app all import from here; nothing else spells the labels out.
It imports nothing heavy, so the app can use it before TensorFlow has loaded.
"""

from __future__ import annotations

#: FER2013 label order: index ``i`` is the ``emotion`` value ``i`` in fer2013.csv.
LABELS: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")

#: Lower-case names, used for image-folder class directories and CSV column names.
LABEL_KEYS: tuple[str, ...] = tuple(label.lower() for label in LABELS)

NUM_CLASSES: int = len(LABELS)

#: Height, width and channels of one model input: a 48x48 grayscale face, values 0-255.
INPUT_SIZE: int = 48
INPUT_SHAPE: tuple[int, int, int] = (INPUT_SIZE, INPUT_SIZE, 1)
