"""The Qt binding itself: a PySide6 release that corrupts reference counts aborts the app within seconds.

PySide6-Essentials 6.12.0 on Python 3.11 drops a reference to ``None`` each time a C++ method
that returns void is called (``QPainter.setPen``, ``QWidget.update``, ...). Painting the probability
bars makes ~75 such calls per frame, so ``None``'s count reaches zero after a few seconds of video
and the interpreter aborts ("none_dealloc"). pyproject.toml excludes that release; this test keeps
any other such release out.
"""

from __future__ import annotations

import os
import subprocess
import sys

CALLS = 3000

SCRIPT = f"""
import sys
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication, QWidget

app = QApplication([])
widget = QWidget()
image = QImage(64, 64, QImage.Format.Format_RGB32)
painter = QPainter(image)
before = sys.getrefcount(None)
for _ in range({CALLS}):
    painter.setPen(QColor(1, 2, 3))
    painter.drawRoundedRect(QRectF(1, 2, 30, 10), 3, 3)
    widget.update()
print(before - sys.getrefcount(None))
painter.end()
"""


def test_calling_void_qt_methods_keeps_reference_counts():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lost = int(done.stdout.strip().splitlines()[-1])
    assert lost < CALLS // 10, f"{lost} references to None lost in {3 * CALLS} Qt calls: a broken PySide6 build"
