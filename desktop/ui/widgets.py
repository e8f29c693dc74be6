"""The window's parts: the video view and the detector settings (the faces are in :mod:`desktop.ui.faces`)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from desktop.core.pipeline import PipelineConfig
from desktop.ui.painting import painting


class VideoView(QWidget):
    """Shows the latest annotated frame, scaled to fit, with an optional message over it.

    A click on the picture is reported in the frame's own pixels, so the window can tell which face it hit.
    """

    clicked = Signal(QPointF)  # where, in frame pixels

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._array: np.ndarray | None = None  # keeps the QImage's pixels alive
        self._message = ""
        self._unpainted: tuple[float, int, float] | None = None  # (captured, faces, pipeline ms) of a new frame
        #: Optional :class:`desktop.ui.latency.LatencyMonitor`, told when each new frame is painted.
        self.monitor = None
        self.setMinimumSize(320, 240)

    def sizeHint(self) -> QSize:
        return QSize(800, 520)

    def set_frame(self, bgr: np.ndarray, captured: float = 0.0, faces: int = 0, pipeline_ms: float = 0.0) -> None:
        """Show ``bgr``; ``captured`` etc. only matter to the latency monitor."""
        # 4 bytes per pixel (B, G, R, 255) is QImage's RGB32, the raster engine's own format: painting it
        # scaled takes ~0.4 ms against ~1.4 ms for BGR888, which Qt converts on every paint (640x360 -> 800x450).
        # The conversion here costs ~0.05 ms.
        self._array = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
        h, w = self._array.shape[:2]
        self._image = QImage(self._array.data, w, h, self._array.strides[0], QImage.Format.Format_RGB32)
        if self.monitor is not None:
            if self._unpainted is not None:
                self.monitor.frame_replaced()
            self._unpainted = (captured, faces, pipeline_ms)
        self.update()

    def set_message(self, text: str) -> None:
        self._message = text
        self.update()

    def message(self) -> str:
        return self._message

    def image_rect(self) -> QRectF:
        """Where the frame is drawn: scaled to fit, centred (empty before the first frame)."""
        if self._image is None:
            return QRectF()
        size = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x, y = (self.width() - size.width()) / 2, (self.height() - size.height()) / 2
        return QRectF(x, y, size.width(), size.height())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        target = self.image_rect()
        if event.button() == Qt.MouseButton.LeftButton and target.contains(event.position()):
            scale = self._image.width() / target.width()
            self.clicked.emit((event.position() - target.topLeft()) * scale)
        super().mousePressEvent(event)

    def paintEvent(self, event) -> None:
        with painting(self) as painter:
            painter.fillRect(self.rect(), QColor(24, 24, 28))
            if self._image is not None:
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawImage(self.image_rect(), self._image)
                if self._unpainted is not None and self.monitor is not None:
                    self.monitor.frame_painted(*self._unpainted)
                self._unpainted = None
            if self._message:
                font = painter.font()
                font.setPointSize(14)
                painter.setFont(font)
                box = self.rect().adjusted(20, 20, -20, -20)
                painter.setPen(QColor(235, 235, 235))
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)


class SettingsPanel(QWidget):
    """Detector settings and smoothing; emits the whole new config on any change."""

    changed = Signal(object)  # PipelineConfig

    def __init__(self, config: PipelineConfig, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._config = config
        form = QFormLayout(self)
        d = config.detector
        self.scale_factor = self._spin(
            QDoubleSpinBox(), 1.05, 1.5, d.scale_factor, 0.05, "Step between detection scales"
        )
        self.min_neighbors = self._spin(QSpinBox(), 1, 15, d.min_neighbors, 1, "Higher: fewer false faces")
        self.min_face = self._spin(QSpinBox(), 20, 400, d.min_face_size, 4, "Smallest face to find, in pixels")
        self.smoothing = self._spin(
            QDoubleSpinBox(),
            0.0,
            2.0,
            config.smoothing_s,
            0.05,
            "How long each face's bars take to follow a change of expression: steadier bars, later changes. "
            "0 = every frame as it comes",
        )
        self.min_face.setSuffix(" px")
        self.smoothing.setSuffix(" s")
        form.addRow("Scale factor", self.scale_factor)
        form.addRow("Min neighbours", self.min_neighbors)
        form.addRow("Min face size", self.min_face)
        form.addRow("Smoothing", self.smoothing)

    def _spin(self, box, low, high, value, step, tip):
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setValue(value)
        box.setToolTip(tip)
        box.valueChanged.connect(self._emit)
        return box

    def config(self) -> PipelineConfig:
        return self._config

    def _emit(self) -> None:
        detector = replace(
            self._config.detector,
            scale_factor=round(self.scale_factor.value(), 3),
            min_neighbors=self.min_neighbors.value(),
            min_face_size=self.min_face.value(),
        )
        self._config = replace(self._config, detector=detector, smoothing_s=round(self.smoothing.value(), 3))
        self.changed.emit(self._config)
