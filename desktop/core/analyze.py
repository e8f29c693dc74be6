"""Headless analysis: the GUI's pipeline over a whole file, written to CSV, JSON, an annotated video, a plot
and explanation pictures."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

from desktop.core.annotate import draw_result, explanation_card
from desktop.core.export import (
    ExportError,
    Summary,
    VideoRecorder,
    check_plot_path,
    summarize,
    write_csv,
    write_json,
    write_plot,
)
from desktop.core.pipeline import FrameResult, Pipeline
from desktop.core.sources import FrameSource, SourceError


@dataclass(frozen=True)
class AnalyzeOutputs:
    csv: Path | None = None
    json: Path | None = None
    annotated: Path | None = None
    plot: Path | None = None
    explain: Path | None = None  # a folder: one picture per face of the sampled frames (explanation_card)
    explain_every_s: float = 1.0  # seconds of video between two explained frames


def analyze(
    source: FrameSource,
    pipeline: Pipeline,
    *,
    every: int = 1,
    max_frames: int | None = None,
    outputs: AnalyzeOutputs | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> tuple[list[FrameResult], Summary]:
    """Process every ``every``-th frame (at most ``max_frames``) and write the requested outputs.

    The model is loaded before the clock starts, so ``Summary.fps`` is the processing rate.
    """
    if every < 1:
        raise ValueError("--every must be 1 or more")
    if max_frames is not None and max_frames < 1:
        raise ValueError("--max-frames must be 1 or more")
    outputs = outputs or AnalyzeOutputs()
    for path in (outputs.csv, outputs.json, outputs.annotated, outputs.plot):
        _check_writable(path)  # fail now, not after processing the whole video
    if outputs.plot is not None:
        check_plot_path(outputs.plot)
    if outputs.explain is not None:
        if outputs.explain_every_s <= 0:
            raise ValueError("--explain-every must be more than 0 seconds")
        _check_folder(outputs.explain)
    next_explained = 0.0
    count = source.info.frame_count
    expected = math.ceil(count / every) if count else None
    if max_frames is not None:
        expected = min(expected, max_frames) if expected else max_frames
    pipeline.classifier.load()
    results: list[FrameResult] = []
    recorder: VideoRecorder | None = None
    start = time.perf_counter()
    try:
        while max_frames is None or len(results) < max_frames:
            frame = source.read()
            if frame is None:
                break
            explain = outputs.explain is not None and frame.time_s >= next_explained
            result = pipeline.process(
                frame.image, index=frame.index, time_s=frame.time_s, explain="all" if explain else ()
            )
            results.append(result)
            if explain:
                next_explained = frame.time_s + outputs.explain_every_s
                _write_explanations(outputs.explain, result)
            if outputs.annotated is not None:
                if recorder is None:
                    size = (result.width, result.height)
                    recorder = VideoRecorder(outputs.annotated, source.info.fps / every, size)
                recorder.write(draw_result(frame.image, result))
            if progress is not None:
                progress(len(results), expected)
            if every > 1:
                source.skip(every - 1)
    finally:
        if recorder is not None:
            recorder.close()
    seconds = time.perf_counter() - start
    if not results:
        raise SourceError(f"{source.info.name}: no frame could be decoded")
    summary = summarize(results, seconds, source.decode_errors)
    if outputs.csv is not None:
        write_csv(outputs.csv, results)
    if outputs.json is not None:
        write_json(outputs.json, results, summary)
    if outputs.plot is not None:
        write_plot(outputs.plot, results)
    return results, summary


def _write_explanations(folder: Path, result: FrameResult) -> None:
    """One PNG per explained face: ``frame000123_face2.png``."""
    for explanation in result.explanations:
        title = f"frame {result.index} ({result.time_s:.1f} s), face #{explanation.face_id}:"
        path = folder / f"frame{result.index:06d}_face{explanation.face_id}.png"
        if not cv2.imwrite(str(path), explanation_card(explanation.saliency, title)):
            raise ExportError(f"{path}: cannot write this image")


def _check_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{folder}: cannot write there ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK):
        raise ExportError(f"{folder}: cannot write there")


def _check_writable(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        raise ExportError(f"{path}: cannot write there")
