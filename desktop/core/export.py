"""Writing results: per-face CSV rows, JSON, an annotated video, a probability timeline, a summary."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from desktop.core.annotate import EMOTION_COLORS
from desktop.core.pipeline import FrameResult
from model.checkpoint import atomic_write, atomic_write_json, atomic_write_text
from model.spec import LABEL_KEYS, LABELS

#: ``angle``: the degrees a tilted face was turned by to be read upright (:class:`~model.preprocess.Box`); 0 upright.
CSV_COLUMNS = ("frame", "time_s", "face_id", "x", "y", "w", "h", "angle", *LABEL_KEYS, "emotion")


class ExportError(Exception):
    """An output file that cannot be written."""


@dataclass(frozen=True)
class Summary:
    frames: int  # frames processed
    frames_with_faces: int
    faces: int  # face detections over all frames
    face_ids: int  # distinct tracked faces
    fps: float  # frames processed per second of processing
    emotion_share: dict[str, float]  # fraction of detections whose top emotion is each label
    dominant_emotion: str | None
    decode_errors: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(results: Sequence[FrameResult], seconds: float, decode_errors: int = 0) -> Summary:
    tops = Counter(face.emotion_key for r in results for face in r.faces)
    total = sum(tops.values())
    return Summary(
        frames=len(results),
        frames_with_faces=sum(1 for r in results if r.faces),
        faces=total,
        face_ids=len({face.face_id for r in results for face in r.faces}),
        fps=len(results) / seconds if seconds > 0 else 0.0,
        emotion_share={key: tops[key] / total if total else 0.0 for key in LABEL_KEYS},
        dominant_emotion=tops.most_common(1)[0][0] if total else None,
        decode_errors=decode_errors,
    )


def csv_rows(result: FrameResult) -> list[list[object]]:
    """One CSV row per face of a frame; probabilities at full precision."""
    rows = []
    for f in result.faces:
        box = [f.box.x, f.box.y, f.box.w, f.box.h, f"{f.box.angle:g}"]
        rows.append([result.index, f"{result.time_s:.3f}", f.face_id, *box, *f.probs, f.emotion_key])
    return rows


def csv_text(results: Sequence[FrameResult]) -> str:
    """One row per face per frame, under a header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        writer.writerows(csv_rows(r))
    return buffer.getvalue()


class SessionLog:
    """The GUI session's per-face rows, streamed to a temporary CSV file as frames are processed.

    A video that plays (or loops) for hours would otherwise keep every frame's result in
    memory. Here memory stays flat: only the counts and the last result are kept, and
    :meth:`export` copies the file. :meth:`close` removes it.
    """

    def __init__(self) -> None:
        self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives as long as the session)
            "w", suffix=".csv", prefix="emotion-lens-session-", newline="", encoding="utf-8", delete=False
        )
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(CSV_COLUMNS)
        self.frames = self.rows = 0
        self.last: FrameResult | None = None

    def add(self, result: FrameResult) -> None:
        rows = csv_rows(result)
        self._writer.writerows(rows)
        self.frames, self.rows, self.last = self.frames + 1, self.rows + len(rows), result

    def export(self, path: Path) -> None:
        self._file.flush()
        source = Path(self._file.name)
        _guard(path, lambda: atomic_write(path, lambda tmp: shutil.copyfile(source, tmp), suffix=".csv"))

    def close(self) -> None:
        self._file.close()
        Path(self._file.name).unlink(missing_ok=True)


def write_csv(path: Path, results: Sequence[FrameResult]) -> None:
    _guard(path, lambda: atomic_write_text(path, csv_text(results)))


def write_json(path: Path, results: Sequence[FrameResult], summary: Summary) -> None:
    frames = [
        {
            "frame": r.index,
            "time_s": r.time_s,
            "faces": [
                {
                    "face_id": f.face_id,
                    "box": [f.box.x, f.box.y, f.box.w, f.box.h],
                    "angle": f.box.angle,
                    "probabilities": dict(zip(LABEL_KEYS, f.probs, strict=True)),
                    "emotion": f.emotion_key,
                }
                for f in r.faces
            ],
        }
        for r in results
    ]
    _guard(path, lambda: atomic_write_json(path, {"summary": summary.to_dict(), "frames": frames}))


def check_plot_path(path: Path) -> None:
    """Refuse a picture type matplotlib cannot write before a whole video is analysed for it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    types = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if path.suffix and path.suffix[1:].lower() not in types:
        raise ExportError(f"{path}: unsupported picture type (use .png, .jpg, .svg or .pdf)")


def write_plot(path: Path, results: Sequence[FrameResult], max_faces: int = 6) -> None:
    """A timeline of the 7 probabilities for each face (the most-seen ``max_faces`` faces)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    seen = Counter(f.face_id for r in results for f in r.faces)
    ids = sorted(i for i, _ in seen.most_common(max_faces)) or [None]
    fig = Figure(figsize=(10, 2.2 + 2.2 * len(ids)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ids), 1, sharex=True, squeeze=False)[:, 0]
    for ax, face_id in zip(axes, ids, strict=True):
        points = [(r.time_s, f.probs) for r in results for f in r.faces if f.face_id == face_id]
        if points:
            t = np.array([p[0] for p in points])
            probs = np.array([p[1] for p in points])
            for k, label in enumerate(LABELS):
                ax.plot(t, probs[:, k], ".-", ms=2, lw=1.2, label=label, color=np.array(EMOTION_COLORS[k][::-1]) / 255)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"face #{face_id}" if face_id is not None else "no faces found")
        ax.grid(alpha=0.3)
    axes[0].legend(ncol=7, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.45))
    axes[-1].set_xlabel("time (s)")
    _guard(path, lambda: atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format=path.suffix[1:] or "png")))


def _guard(path: Path, write) -> None:
    try:
        write()
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from None


class VideoRecorder:
    """An annotated video: ``.mp4`` (mp4v) or ``.avi`` (MJPG); frames of another size are resized."""

    FOURCC: ClassVar[dict[str, str]] = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        fourcc = self.FOURCC.get(path.suffix.lower())
        if fourcc is None:
            raise ExportError(f"{path}: unsupported video type (use {', '.join(self.FOURCC)})")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.size, self.frames = path, size, 0
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self._writer.isOpened():
            raise ExportError(f"{path}: cannot write a video here")

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        self._writer.release()


def summary_line(summary: Summary, **extra: object) -> str:
    return json.dumps({**summary.to_dict(), **extra})
