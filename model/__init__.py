"""Emotion Lens ML core: labels, preprocessing, models, data, checkpoints, training.

Imports no Qt and nothing from ``desktop``; TensorFlow is imported only by the modules
that need it (``network``, ``training``, ``inference``), never at package import.
"""
