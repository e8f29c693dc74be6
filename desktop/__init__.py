"""Emotion Lens desktop app: ``core`` (Qt-free per-frame pipeline) and ``ui`` (PySide6 front end).

Arrows point one way: ``desktop.ui -> desktop.core -> model``.
"""
