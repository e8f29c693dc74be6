"""The Explain panel: the chosen face as the model saw it, its heat map, and the model's bars for that face."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from desktop.core.annotate import overlay_heatmap
from desktop.core.pipeline import Explanation, Face
from desktop.ui.faces import EmotionBars
from desktop.ui.painting import painting


class HeatmapView(QWidget):
    """The 48x48 face the model saw, enlarged, with the heat map over it."""

    SIZE = 100

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None  # keeps the QImage's pixels alive
        self.setFixedSize(self.SIZE, self.SIZE)

    def set_explanation(self, explanation: Explanation | None) -> None:
        if explanation is None:
            self._image = self._pixels = None
        else:
            face = cv2.resize(explanation.saliency.face, (self.SIZE, self.SIZE), interpolation=cv2.INTER_CUBIC)
            rgb = cv2.cvtColor(overlay_heatmap(cv2.cvtColor(face, cv2.COLOR_GRAY2BGR), explanation.saliency.heatmap),
                               cv2.COLOR_BGR2RGB)  # fmt: skip
            self._pixels = np.ascontiguousarray(rgb)
            self._image = QImage(self._pixels.data, self.SIZE, self.SIZE, 3 * self.SIZE, QImage.Format.Format_RGB888)
        self.update()

    def paintEvent(self, event) -> None:
        with painting(self) as painter:
            painter.fillRect(self.rect(), QColor(40, 40, 44))
            if self._image is not None:
                painter.drawImage(QRectF(self.rect()), self._image)


class ExplainPanel(QWidget):
    """Why the chosen face got its label, updated a few times a second while Explain is on."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heatmap = HeatmapView()
        self.heatmap.setToolTip("The face as the model saw it (48x48 pixels, enlarged), with the heat map over it")
        self.bars = EmotionBars(title="#{id} as the model saw it")
        self.bars.setCursor(Qt.CursorShape.ArrowCursor)
        self.bars.setMinimumWidth(170)
        self.bars.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.status = QLabel()
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.heatmap, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.bars, 1)
        column = QVBoxLayout(self)
        column.addLayout(row)
        column.addWidget(self.status)
        self._explanation: Explanation | None = None
        self._on = False
        self.set_explanation(None)

    def set_on(self, on: bool) -> None:
        """Explain turned on or off: off, the panel says how to turn it on."""
        self._on = on
        self.set_explanation(None)

    def explanation(self) -> Explanation | None:
        return self._explanation

    def set_explanation(self, explanation: Explanation | None, waiting_for: int | None = None) -> None:
        """Show ``explanation``; without one, say what is awaited (a face to choose, or its first map)."""
        if explanation is self._explanation and explanation is not None:
            return
        self._explanation = explanation
        self.heatmap.set_explanation(explanation)
        self.bars.setVisible(explanation is not None)
        if explanation is not None:
            s = explanation.saliency
            self.bars.set_face(Face(explanation.face_id, explanation.box, tuple(float(p) for p in s.probs)))
            self.status.setText(f"Warm colours: the parts of the face that pushed {s.emotion} up.")
        elif not self._on:
            self.status.setText("Turn on Explain (E) to see which parts of the chosen face drove its label.")
        elif waiting_for is not None:
            self.status.setText(f"Explaining face #{waiting_for}…")
        else:
            self.status.setText("Click a face in the video or in the list to see what drove its label.")
