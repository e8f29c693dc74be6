"""The side panel's faces: a card of bars per face, compact rows in a crowd, and the chosen face's last 10 s."""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from desktop.core.annotate import EMOTION_COLORS
from desktop.core.pipeline import Face
from desktop.ui.painting import painting
from model.spec import LABELS

COLORS = [QColor(r, g, b) for b, g, r in EMOTION_COLORS]

#: With more faces than this, the panel shows compact rows, and a full card only for the chosen face.
MAX_CARDS = 3


class _Clickable(QWidget):
    """A face's widget: a click chooses that face; the chosen one is framed."""

    clicked = Signal(int)  # face ID

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._face: Face | None = None
        self._selected = False
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_face(self, face: Face) -> None:
        self._face = face
        self.update()

    def face(self) -> Face | None:
        return self._face

    def set_selected(self, selected: bool) -> None:
        if selected != self._selected:
            self._selected = selected
            self.update()

    def is_selected(self) -> bool:
        return self._selected

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._face is not None and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self._face.face_id)
        super().mousePressEvent(event)

    def _frame(self, painter: QPainter) -> None:
        if self._selected:
            painter.setPen(QPen(self.palette().highlight().color(), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(QRectF(self.rect()).adjusted(1, 1, -1, -1), 4, 4)


class EmotionBars(_Clickable):
    """One face: its ID and top emotion, and a bar for each of the 7 probabilities."""

    ROW = 20

    def __init__(self, parent: QWidget | None = None, title: str = "Face #{id}: {emotion}") -> None:
        super().__init__(parent)
        self.title = title
        self.setMinimumHeight(self.ROW * (len(LABELS) + 1) + 8)
        self.setMinimumWidth(200)

    def probabilities(self) -> tuple[float, ...]:
        return self._face.probs if self._face is not None else ()

    def paintEvent(self, event) -> None:
        if self._face is None:
            return
        with painting(self) as painter:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._frame(painter)
            face, row = self._face, self.ROW
            bold = QFont(painter.font())
            bold.setBold(True)
            painter.setFont(bold)
            painter.setPen(self.palette().windowText().color())
            painter.drawText(
                QRectF(6, 0, self.width() - 12, row),
                Qt.AlignmentFlag.AlignVCenter,
                self.title.format(id=face.face_id, emotion=face.emotion),
            )
            label_w, pct_w = 70, 48
            bar_w = max(self.width() - label_w - pct_w - 14, 10)
            for k, (label, p) in enumerate(zip(LABELS, face.probs, strict=True)):
                y = row * (k + 1) + 4
                painter.setFont(bold if k == face.top else self.font())
                painter.setPen(self.palette().windowText().color())
                painter.drawText(QRectF(6, y, label_w, row - 4), Qt.AlignmentFlag.AlignVCenter, label)
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(128, 128, 128, 50))
                painter.drawRoundedRect(QRectF(label_w + 6, y + 2, bar_w, row - 8), 3, 3)
                painter.setBrush(COLORS[k])
                painter.drawRoundedRect(QRectF(label_w + 6, y + 2, bar_w * p, row - 8), 3, 3)
                painter.setPen(self.palette().windowText().color())
                painter.drawText(
                    QRectF(label_w + bar_w + 8, y, pct_w, row - 4),
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                    f"{p:.0%}",
                )


class FaceRow(_Clickable):
    """One face in a crowd, in one line: ID, top emotion, and all seven probabilities as one segmented bar."""

    HEIGHT = 24

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedHeight(self.HEIGHT)
        self.setMinimumWidth(200)

    def paintEvent(self, event) -> None:
        if self._face is None:
            return
        with painting(self) as painter:
            self._frame(painter)
            face, h = self._face, self.HEIGHT
            painter.setPen(self.palette().windowText().color())
            text_w = 130
            painter.drawText(QRectF(6, 0, text_w, h), Qt.AlignmentFlag.AlignVCenter, f"#{face.face_id} {face.emotion}")
            x, width = 6.0 + text_w, max(self.width() - text_w - 12, 10)
            painter.setPen(Qt.PenStyle.NoPen)
            for k, p in enumerate(face.probs):  # the segments add up to the bar's width
                painter.setBrush(COLORS[k])
                painter.drawRect(QRectF(x, 5, width * p, h - 10))
                x += width * p


class FacePanel(QScrollArea):
    """A card of bars per face in the frame, kept by face ID so cards don't jump around.

    With more than :data:`MAX_CARDS` faces, each face gets a compact :class:`FaceRow` instead, and
    only the chosen face keeps its full card, so a crowd fits without scrolling.
    """

    faceClicked = Signal(int)  # face ID

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        self._layout = QVBoxLayout(body)
        self._layout.setSpacing(2)
        self._empty = QLabel("No face in view")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self._empty)
        self._layout.addStretch(1)
        self.setWidget(body)
        self._widgets: dict[int, _Clickable] = {}
        self._selected: int | None = None

    def set_selected(self, face_id: int | None) -> None:
        """Frame the chosen face (and give it a full card in a crowd from the next :meth:`set_faces`)."""
        self._selected = face_id
        for i, widget in self._widgets.items():
            widget.set_selected(i == face_id)

    def set_faces(self, faces: tuple[Face, ...]) -> None:
        ids = {f.face_id for f in faces}
        crowd = len(faces) > MAX_CARDS
        for face_id in list(self._widgets):
            kind = FaceRow if crowd and face_id != self._selected else EmotionBars
            if face_id not in ids or type(self._widgets[face_id]) is not kind:
                self._widgets.pop(face_id).deleteLater()
        for position, face in enumerate(faces):
            widget = self._widgets.get(face.face_id)
            if widget is None:
                widget = self._widgets[face.face_id] = (
                    FaceRow() if crowd and face.face_id != self._selected else EmotionBars()
                )
                widget.clicked.connect(self.faceClicked)
                widget.set_selected(face.face_id == self._selected)
            if self._layout.indexOf(widget) != position + 1:
                self._layout.insertWidget(position + 1, widget)
            widget.set_face(face)
        self._empty.setVisible(not faces)

    def widgets(self) -> list[_Clickable]:
        """Every face's widget, top to bottom."""
        return sorted(self._widgets.values(), key=self._layout.indexOf)

    def cards(self) -> list[EmotionBars]:
        """The full cards, top to bottom."""
        return [w for w in self.widgets() if isinstance(w, EmotionBars)]

    def rows(self) -> list[FaceRow]:
        """The compact rows, top to bottom."""
        return [w for w in self.widgets() if isinstance(w, FaceRow)]


class ProbabilityStrip(QWidget):
    """The chosen face's seven probabilities over the last :attr:`SPAN_S` seconds, one line per emotion.

    A change of expression shows as lines crossing, which is quicker to see than numbers to read.
    """

    SPAN_S = 10.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._face_id: int | None = None
        self._points: deque[tuple[float, tuple[float, ...]]] = deque()
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("The chosen face's emotions over the last 10 seconds")

    def add(self, face_id: int | None, time_s: float, probs: tuple[float, ...] = ()) -> None:
        """Append the face's probabilities at ``time_s``; another face, or time going back (a seek), starts over."""
        if face_id != self._face_id or (self._points and time_s < self._points[-1][0]):
            self._points.clear()
            self._face_id = face_id
        if face_id is not None and probs:
            self._points.append((time_s, tuple(probs)))
        while self._points and self._points[0][0] < time_s - self.SPAN_S:
            self._points.popleft()
        self.update()

    def points(self) -> list[tuple[float, tuple[float, ...]]]:
        return list(self._points)

    def face_id(self) -> int | None:
        return self._face_id

    def paintEvent(self, event) -> None:
        with painting(self) as painter:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            area = QRectF(self.rect()).adjusted(4, 16, -4, -4)
            painter.setPen(QColor(128, 128, 128, 90))
            painter.drawRect(area)
            painter.setPen(self.palette().windowText().color())
            title = "No face chosen"
            if self._face_id is not None:
                title = f"Face #{self._face_id}, last {self.SPAN_S:.0f} s"
            painter.drawText(QRectF(4, 0, self.width() - 8, 15), Qt.AlignmentFlag.AlignVCenter, title)
            if len(self._points) < 2:
                return
            end = self._points[-1][0]
            for k in range(len(LABELS)):
                line = QPolygonF(
                    [
                        QPointF(
                            area.right() - (end - t) / self.SPAN_S * area.width(),
                            area.bottom() - probs[k] * area.height(),
                        )
                        for t, probs in self._points
                    ]
                )
                painter.setPen(QPen(COLORS[k], 1.6))
                painter.drawPolyline(line)
