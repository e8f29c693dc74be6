"""Flicker against lag for the per-face smoothing time constant, on real video.

    python -m benchmarks.smoothing_bench [VIDEO ...] [--taus 0,0.1,0.2,...]

For each time constant it runs the app's pipeline (the shipped model, the engine the app uses)
over every frame of each video and reports, for the largest face:
- flicker: top-emotion changes per second, and the mean change of the 7 probabilities from one
  frame to the next (half the L1 distance: 0 = steady, 1 = a complete swap);
- lag: how much later than with no smoothing the top emotion follows the first change of
  expression (the first time the raw top emotion changes, to the emotion it changes to).
With no VIDEO it uses ../shared/media/pyfeat_single_face.mp4 (a face going from neutral to a
smile) and a clip made from the bundled demo photo (one expression: all change there is noise).
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.pipeline_bench import write_demo_video
from desktop.core.classifier import EmotionClassifier
from desktop.core.pipeline import Pipeline, PipelineConfig
from desktop.core.sources import open_source
from model.spec import LABELS

ROOT = Path(__file__).resolve().parents[1]

SHARED_CLIP = ROOT.parent / "shared" / "media" / "pyfeat_single_face.mp4"


def largest_face_probs(video: Path, pipeline: Pipeline) -> tuple[np.ndarray, np.ndarray]:
    """Times and probabilities of the largest face in every frame that has one."""
    pipeline.reset()
    times, probs = [], []
    with open_source(video) as source:
        for frame in iter(source.read, None):
            result = pipeline.process(frame.image, index=frame.index, time_s=frame.time_s)
            if result.faces:
                face = max(result.faces, key=lambda f: f.box.area)
                times.append(frame.time_s)
                probs.append(face.probs)
    return np.asarray(times), np.asarray(probs)


def first_change(times: np.ndarray, probs: np.ndarray) -> tuple[float, int] | None:
    """When the top emotion first changes, and to which emotion (None if it never does)."""
    top = probs.argmax(axis=1)
    changed = np.flatnonzero(top != top[0])
    return (float(times[changed[0]]), int(top[changed[0]])) if len(changed) else None


def follows_at(times: np.ndarray, probs: np.ndarray, emotion: int) -> float | None:
    reached = np.flatnonzero(probs.argmax(axis=1) == emotion)
    return float(times[reached[0]]) if len(reached) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--taus", default="0,0.05,0.1,0.15,0.2,0.3,0.5,1.0", help="time constants in seconds")
    args = parser.parse_args(argv)
    taus = [float(t) for t in args.taus.split(",")]
    classifier = EmotionClassifier()
    classifier.load()
    figures: dict = {"model": classifier.name, "engine": classifier.device, "videos": {}}
    with tempfile.TemporaryDirectory() as tmp:
        videos = args.videos or [p for p in (SHARED_CLIP,) if p.is_file()] + [
            write_demo_video(Path(tmp) / "demo-photo.mp4", 150)
        ]
        for video in videos:
            rows, change = {}, None
            for tau in taus:
                pipeline = Pipeline(classifier, PipelineConfig(smoothing_s=tau))
                times, probs = largest_face_probs(video, pipeline)
                seconds = max(times[-1] - times[0], 1e-9)
                switches = int((np.diff(probs.argmax(axis=1)) != 0).sum())
                rows[tau] = {
                    "frames_with_face": len(times),
                    "top_changes_per_s": switches / seconds,
                    "mean_change_per_frame": float(0.5 * np.abs(np.diff(probs, axis=0)).sum(axis=1).mean()),
                }
                change = change or first_change(times, probs)  # from the first (smallest) tau: raw
                at = follows_at(times, probs, change[1]) if change else None
                rows[tau]["lag_s"] = None if at is None else at - change[0]
            what = f"first change to {LABELS[change[1]]} at {change[0]:.2f} s" if change else "no change"
            print(f"{video.name}: {rows[taus[0]]['frames_with_face']} frames with a face, {what}")
            print(f"{'tau s':>6}{'changes/s':>11}{'change/frame':>14}{'lag s':>8}")
            for tau, r in rows.items():
                lag = "-" if r["lag_s"] is None else f"{r['lag_s']:.2f}"
                print(f"{tau:6.2f}{r['top_changes_per_s']:11.2f}{r['mean_change_per_frame']:14.4f}{lag:>8}")
            figures["videos"][video.name] = rows
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
