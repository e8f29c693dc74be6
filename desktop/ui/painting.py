"""One way to paint: a painter that is always ended, even when the paint code raises."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QWidget


@contextlib.contextmanager
def painting(widget: QWidget) -> Iterator[QPainter]:
    """``with painting(self) as painter:`` in ``paintEvent``.

    A painter left active after ``paintEvent`` has raised (a result the code did not expect)
    keeps the widget's backing store locked; the next paint of it crashed the app (SIGSEGV,
    tests/test_stress.py). Ending it in ``finally`` keeps a bug in paint code a logged error.
    """
    painter = QPainter(widget)
    try:
        yield painter
    finally:
        painter.end()
