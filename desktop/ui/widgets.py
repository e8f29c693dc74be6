"""The window's parts: the video view, a face's probability bars, the list of faces, the detector settings."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.core.annotate import EMOTION_COLORS
from desktop.core.detector import DetectorConfig
from desktop.core.pipeline import Face, PipelineConfig
from desktop.ui.painting import painting
from model.spec import LABELS

_COLORS = [QColor(r, g, b) for b, g, r in EMOTION_COLORS]


class VideoView(QWidget):
    """Shows the latest annotated frame, scaled to fit, with an optional message over it."""

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

    def paintEvent(self, event) -> None:
        with painting(self) as painter:
            painter.fillRect(self.rect(), QColor(24, 24, 28))
            if self._image is not None:
                size = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
                x, y = (self.width() - size.width()) / 2, (self.height() - size.height()) / 2
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawImage(QRectF(x, y, size.width(), size.height()), self._image)
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


class EmotionBars(QWidget):
    """One face: its ID and top emotion, and a bar for each of the 7 probabilities."""

    ROW = 20

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._face: Face | None = None
        self.setMinimumHeight(self.ROW * (len(LABELS) + 1) + 8)
        self.setMinimumWidth(200)

    def set_face(self, face: Face) -> None:
        self._face = face
        self.update()

    def face(self) -> Face | None:
        return self._face

    def probabilities(self) -> tuple[float, ...]:
        return self._face.probs if self._face is not None else ()

    def paintEvent(self, event) -> None:
        if self._face is None:
            return
        with painting(self) as painter:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            face, row = self._face, self.ROW
            bold = QFont(painter.font())
            bold.setBold(True)
            painter.setFont(bold)
            painter.setPen(self.palette().windowText().color())
            painter.drawText(
                QRectF(4, 0, self.width() - 8, row),
                Qt.AlignmentFlag.AlignVCenter,
                f"Face #{face.face_id}: {face.emotion}",
            )
            label_w, pct_w = 70, 48
            bar_w = max(self.width() - label_w - pct_w - 12, 10)
            for k, (label, p) in enumerate(zip(LABELS, face.probs, strict=True)):
                y = row * (k + 1) + 4
                painter.setFont(bold if k == face.top else self.font())
                painter.setPen(self.palette().windowText().color())
                painter.drawText(QRectF(4, y, label_w, row - 4), Qt.AlignmentFlag.AlignVCenter, label)
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(128, 128, 128, 50))
                painter.drawRoundedRect(QRectF(label_w + 4, y + 2, bar_w, row - 8), 3, 3)
                painter.setBrush(_COLORS[k])
                painter.drawRoundedRect(QRectF(label_w + 4, y + 2, bar_w * p, row - 8), 3, 3)
                painter.setPen(self.palette().windowText().color())
                painter.drawText(
                    QRectF(label_w + bar_w + 8, y, pct_w, row - 4),
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                    f"{p:.0%}",
                )


class FacePanel(QScrollArea):
    """A card of bars per face in the frame, kept by face ID so cards don't jump around."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        self._layout = QVBoxLayout(body)
        self._empty = QLabel("No face in view")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self._empty)
        self._layout.addStretch(1)
        self.setWidget(body)
        self._cards: dict[int, EmotionBars] = {}

    def set_faces(self, faces: tuple[Face, ...]) -> None:
        ids = {f.face_id for f in faces}
        for face_id in [i for i in self._cards if i not in ids]:
            self._cards.pop(face_id).deleteLater()
        for position, face in enumerate(faces):
            card = self._cards.get(face.face_id)
            if card is None:
                card = self._cards[face.face_id] = EmotionBars()
            if self._layout.indexOf(card) != position + 1:
                self._layout.insertWidget(position + 1, card)
            card.set_face(face)
        self._empty.setVisible(not faces)

    def cards(self) -> list[EmotionBars]:
        return [self._cards[i] for i in sorted(self._cards, key=lambda i: self._layout.indexOf(self._cards[i]))]


class SettingsPanel(QGroupBox):
    """Detector settings and smoothing; emits the whole new config on any change."""

    changed = Signal(object)  # PipelineConfig

    def __init__(self, config: PipelineConfig, parent: QWidget | None = None) -> None:
        super().__init__("Detection", parent)
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
        detector = DetectorConfig(
            scale_factor=round(self.scale_factor.value(), 3),
            min_neighbors=self.min_neighbors.value(),
            min_face_size=self.min_face.value(),
            detect_width=self._config.detector.detect_width,
        )
        self._config = replace(self._config, detector=detector, smoothing_s=round(self.smoothing.value(), 3))
        self.changed.emit(self._config)
