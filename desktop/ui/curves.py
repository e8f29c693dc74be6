"""A small painted chart of training curves (QtCharts is not in PySide6-Essentials)."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.ui.painting import painting

TRAIN_COLOR = QColor("#1f77b4")
VAL_COLOR = QColor("#ff7f0e")


class CurvesWidget(QWidget):
    """Loss and accuracy per epoch, train and validation, side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history: list[dict[str, float]] = []
        self.setMinimumHeight(160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_history(self, history: list[dict[str, float]]) -> None:
        self.history = list(history)
        self.update()

    def add_epoch(self, row: dict[str, float]) -> None:
        self.history = [h for h in self.history if h["epoch"] != row["epoch"]] + [row]
        self.update()

    def paintEvent(self, event) -> None:
        with painting(self) as painter:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.fillRect(self.rect(), self.palette().base())
            half = self.width() / 2
            self._chart(painter, QRectF(0, 0, half, self.height()), "loss")
            self._chart(painter, QRectF(half, 0, half, self.height()), "accuracy")

    def _chart(self, painter: QPainter, area: QRectF, key: str) -> None:
        plot = area.adjusted(40, 22, -10, -24)
        painter.setPen(self.palette().text().color())
        painter.drawText(area.adjusted(0, 2, 0, 0), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, key)
        painter.setPen(QPen(QColor(160, 160, 160), 1))
        painter.drawRect(plot)
        values = [h[k] for h in self.history for k in (key, f"val_{key}") if math.isfinite(h.get(k, math.nan))]
        if not values:
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "after the first epoch")
            return
        lo, hi = (0.0, 1.0) if key == "accuracy" else (0.0, max(values) * 1.05)
        epochs = [h["epoch"] for h in self.history]
        e0, e1 = min(epochs), max(max(epochs), min(epochs) + 1)
        painter.setPen(self.palette().text().color())
        painter.drawText(QRectF(area.left(), plot.top() - 8, 36, 16), Qt.AlignmentFlag.AlignRight, f"{hi:.2g}")
        painter.drawText(QRectF(area.left(), plot.bottom() - 8, 36, 16), Qt.AlignmentFlag.AlignRight, f"{lo:.2g}")
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), 16), Qt.AlignmentFlag.AlignHCenter,
                         f"epoch {e0:g}–{e1:g}")  # fmt: skip

        def point(epoch: float, value: float) -> QPointF:
            x = plot.left() + (epoch - e0) / (e1 - e0) * plot.width()
            y = plot.bottom() - (value - lo) / max(hi - lo, 1e-9) * plot.height()
            return QPointF(x, y)

        for name, color in ((key, TRAIN_COLOR), (f"val_{key}", VAL_COLOR)):
            points = [point(h["epoch"], h[name]) for h in self.history if math.isfinite(h.get(name, math.nan))]
            painter.setPen(QPen(color, 2))
            if len(points) > 1:
                painter.drawPolyline(QPolygonF(points))
            for p in points:
                painter.drawEllipse(p, 2.5, 2.5)
        painter.setPen(TRAIN_COLOR)
        painter.drawText(QRectF(plot.left() + 4, plot.top() + 2, 80, 14), "train")
        painter.setPen(VAL_COLOR)
        painter.drawText(QRectF(plot.left() + 4, plot.top() + 16, 80, 14), "validation")
