"""Per-stage speed of the headless pipeline against decode alone and a seed-style baseline.

    python -m benchmarks.pipeline_bench [VIDEO] [--frames N]

On the same frames, in one run, it measures:
- decode only (the ceiling),
- Haar detection only, a whole-frame scan of every frame as a video's scans run (the first cascade,
  and one fallback look in turn where it finds nothing),
- the same on the frames turned on their side (and stretched back to their size), where the
  cascades find no face: as the pipeline runs them in a video (the first cascade and one
  fallback look a frame, in turn), as it runs a still (every fallback look), and with the
  first cascade alone,
- the full headless pipeline exactly as ``python -m desktop analyze`` runs it,
- a seed-style baseline: Haar 1.3/5 on the full-resolution gray frame and ``model.predict``
  on each face, with the same model.
It prints a table, the ratios pipeline/baseline and pipeline/decode, the share of frames with
a face for the pipeline and the baseline, and as its last stdout line one JSON object.
With no VIDEO it writes a 640x360 clip from the bundled demo photo.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np

from desktop.core.analyze import analyze
from desktop.core.classifier import EmotionClassifier
from desktop.core.detector import FaceDetector
from desktop.core.pipeline import Pipeline
from desktop.core.resources import CASCADE, resource_path
from desktop.core.sources import DemoSource, open_source
from model.preprocess import Box, face_to_input, to_gray


def write_demo_video(path: Path, frames: int, size: tuple[int, int] = (640, 360), fps: float = 30.0) -> Path:
    source = DemoSource(size=size, fps=fps)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(frames):
        writer.write(source.read().image)
    writer.release()
    return path


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, float)
    return {"median_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95))}


def bench_decode(video: Path, limit: int) -> tuple[list[np.ndarray], float, list[float]]:
    cap = cv2.VideoCapture(str(video))
    frames, times = [], []
    start = time.perf_counter()
    while len(frames) < limit:
        t = time.perf_counter()
        ok, image = cap.read()
        if not ok:
            break
        times.append(1000 * (time.perf_counter() - t))
        frames.append(image)
    seconds = time.perf_counter() - start
    cap.release()
    return frames, len(frames) / seconds, times


def bench_detect(
    frames: list[np.ndarray], detector: FaceDetector, video: bool = False
) -> tuple[float, list[float], int]:
    """A whole-frame scan of every frame: as a still is scanned (every look), or as a video's scans are (``video``:
    the first cascade, and one fallback look in turn where it finds nothing)."""
    times, with_faces = [], 0
    start = time.perf_counter()
    for k, image in enumerate(frames):
        t = time.perf_counter()
        with_faces += bool(detector.detect(image, fallback=k if video else None))
        times.append(1000 * (time.perf_counter() - t))
    return len(frames) / (time.perf_counter() - start), times, with_faces


def bench_video_detect(
    frames: list[np.ndarray], pipeline: Pipeline, fps: float = 30.0
) -> tuple[float, list[float], int]:
    """Detection as the pipeline runs it on frames of a video (which spreads fallback looks over faceless ones)."""
    pipeline.reset()
    times, with_faces = [], 0
    start = time.perf_counter()
    for k, image in enumerate(frames):
        result = pipeline.process(image, index=k, time_s=k / fps)
        with_faces += bool(result.faces)
        times.append(result.timings.detect_ms)
    pipeline.reset()
    return len(frames) / (time.perf_counter() - start), times, with_faces


def bench_baseline(frames: list[np.ndarray], keras_model) -> tuple[float, dict[str, list[float]], int]:
    """The seed project's loop: full-frame Haar 1.3/5, then ``model.predict`` per face."""
    cascade = cv2.CascadeClassifier(str(resource_path(CASCADE)))
    detect_ms, classify_ms, with_faces = [], [], 0
    start = time.perf_counter()
    for image in frames:
        t0 = time.perf_counter()
        gray = to_gray(image)
        found = cascade.detectMultiScale(gray, scaleFactor=1.3, minNeighbors=5)
        t1 = time.perf_counter()
        for x, y, w, h in np.asarray(found).reshape(-1, 4):
            face = face_to_input(gray, Box(int(x), int(y), int(w), int(h)))[None].astype(np.float32)
            keras_model.predict(face, verbose=0)
        t2 = time.perf_counter()
        with_faces += len(found) > 0
        detect_ms.append(1000 * (t1 - t0))
        classify_ms.append(1000 * (t2 - t1))
    return len(frames) / (time.perf_counter() - start), {"detect": detect_ms, "classify": classify_ms}, with_faces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", type=Path, help="video file (default: a clip made from the demo photo)")
    parser.add_argument("--frames", type=int, default=300, help="frames to use (default 300)")
    parser.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    args = parser.parse_args(argv)

    tmp = None
    video = args.video
    if video is None:
        tmp = tempfile.TemporaryDirectory()
        video = write_demo_video(Path(tmp.name) / "demo.mp4", args.frames)
    if not Path(video).is_file():
        print(f"error: {video}: no such file", file=sys.stderr)
        return 2

    frames, decode_fps, decode_ms = bench_decode(video, args.frames)
    if not frames:
        print(f"error: {video}: no frame could be decoded", file=sys.stderr)
        return 2
    classifier = EmotionClassifier(args.model)
    pipeline = Pipeline(classifier)
    detect_fps, detect_ms, detect_faces = bench_detect(frames, pipeline.detector, video=True)
    # The same texture and size without an upright face: what a frame nobody is in costs.
    sideways = [cv2.resize(np.rot90(image), image.shape[1::-1]) for image in frames]
    empty_fps, empty_ms, empty_faces = bench_video_detect(sideways, pipeline)
    still_fps, still_ms, still_faces = bench_detect(sideways, pipeline.detector)
    first_only = FaceDetector(replace(pipeline.detector.config, fallback_looks=False))
    first_fps, first_ms, first_faces = bench_detect(sideways, first_only)

    classifier.load()  # model loading and warm-up are not part of any timing
    with open_source(video) as source:
        results, summary = analyze(source, pipeline, max_frames=len(frames))
    stage = {name: [getattr(r.timings, f"{name}_ms") for r in results] for name in ("detect", "preprocess", "classify")}

    from model.checkpoint import load_model

    keras_model = load_model(classifier.model_path).model
    keras_model.predict(np.zeros((1, 48, 48, 1), np.float32), verbose=0)  # warm up, as the seed did once
    baseline_fps, baseline_stage, baseline_faces = bench_baseline(frames, keras_model)

    n = len(frames)
    figures = {
        "video": str(args.video or "generated demo clip 640x360"),
        "frames": n,
        "decode_fps": decode_fps,
        "detect_fps": detect_fps,
        "pipeline_fps": summary.fps,
        "baseline_fps": baseline_fps,
        "pipeline_vs_baseline": summary.fps / baseline_fps,
        "pipeline_vs_decode": summary.fps / decode_fps,
        "pipeline_face_frames": summary.frames_with_faces / n,
        "baseline_face_frames": baseline_faces / n,
        "detect_face_frames": detect_faces / n,
        "faceless_detect_fps": empty_fps,
        "faceless_every_look_fps": still_fps,
        "faceless_first_cascade_fps": first_fps,
        "faceless_fallback_cost": float(np.median(empty_ms) / np.median(first_ms)),
        "stages_ms": {
            "decode": stats(decode_ms),
            "detect_only": stats(detect_ms),
            "faceless_detect": stats(empty_ms),
            "faceless_every_look": stats(still_ms),
            "faceless_first_cascade": stats(first_ms),
            **{f"pipeline_{k}": stats(v) for k, v in stage.items()},
            **{f"baseline_{k}": stats(v) for k, v in baseline_stage.items()},
        },
        "model": classifier.name,
        "device": classifier.device,
        "cpu_count": os.cpu_count(),
    }
    print(f"{figures['video']}: {n} frames, model {classifier.name} on {classifier.device}")
    print(f"{'':22}{'fps':>8}{'median ms':>11}{'p95 ms':>9}{'face frames':>13}")
    pipeline_ms = stats([r.timings.total_ms for r in results])
    baseline_ms = stats([a + b for a, b in zip(*baseline_stage.values(), strict=True)])
    rows = [
        ("decode only", decode_fps, figures["stages_ms"]["decode"], None),
        ("detect only", detect_fps, figures["stages_ms"]["detect_only"], detect_faces / n),
        ("  frames sideways", empty_fps, figures["stages_ms"]["faceless_detect"], empty_faces / n),
        ("  ... every look", still_fps, figures["stages_ms"]["faceless_every_look"], still_faces / n),
        ("  ... first cascade", first_fps, figures["stages_ms"]["faceless_first_cascade"], first_faces / n),
        ("pipeline (analyze)", summary.fps, pipeline_ms, summary.frames_with_faces / n),
        ("seed-style baseline", baseline_fps, baseline_ms, baseline_faces / n),
    ]
    for name, fps, s, share in rows:
        shown = f"{share:13.1%}" if share is not None else ""
        print(f"{name:22}{fps:8.1f}{s['median_ms']:11.2f}{s['p95_ms']:9.2f}{shown}")
    for k, v in stage.items():
        print(f"  pipeline {k:12}{'':8}{np.median(v):11.2f}{np.percentile(v, 95):9.2f}")
    print(f"pipeline/baseline {figures['pipeline_vs_baseline']:.1f}x")
    print(f"a video frame without a face: {figures['faceless_fallback_cost']:.2f}x the first cascade alone")
    print(f"pipeline/decode {figures['pipeline_vs_decode']:.2f}")
    print(json.dumps(figures))
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
