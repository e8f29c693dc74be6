"""Drawing results onto frames: what the GUI shows, snapshots save and recordings keep."""

from __future__ import annotations

import cv2
import numpy as np

from desktop.core.pipeline import FrameResult

#: One colour per emotion (BGR), in LABELS order; the GUI's bars use the same ones.
EMOTION_COLORS: tuple[tuple[int, int, int], ...] = (
    (60, 60, 225),  # Angry: red
    (60, 150, 60),  # Disgust: green
    (170, 80, 170),  # Fear: purple
    (40, 200, 250),  # Happy: yellow
    (200, 120, 40),  # Sad: blue
    (30, 140, 255),  # Surprise: orange
    (175, 175, 175),  # Neutral: grey
)


def draw_result(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of ``image`` with each face's box, ID, top emotion and its probability."""
    out = image.copy()
    h = out.shape[0]
    scale = max(0.45, h / 900)
    thickness = max(1, round(h / 360))
    for face in result.faces:
        b, color = face.box, EMOTION_COLORS[face.top]
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), color, thickness + 1)
        text = f"#{face.face_id} {face.emotion} {face.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        y = b.y - 4 if b.y - th - base - 4 >= 0 else b.y + b.h + th + 4
        cv2.rectangle(out, (b.x, y - th - base), (b.x + tw + 6, y + base - 2), color, -1)
        cv2.putText(out, text, (b.x + 3, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), thickness, cv2.LINE_AA)
    return out
