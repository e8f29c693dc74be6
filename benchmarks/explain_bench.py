"""What Explain costs: one occlusion map, and the whole app playing a video with Explain off and on.

    python -m benchmarks.explain_bench [VIDEO] [--seconds 20] [--runs 2] [--repeats 50]

1. Milliseconds per map (median, p95) for the bundled photo's face with the app's engine (LiteRT on
   the CPU), with the flips the shipped model runs with and without them, next to one plain call; and
   for drawing a map over a 240 px face, which the app does on every frame while Explain is on.
2. ``python -m desktop --source VIDEO --bench-seconds N``, launched as a user launches it, without and
   with ``--explain``: displayed fps, maps shown per second, capture-to-paint p95, the longest UI stall,
   and the ratios on/off. With no VIDEO it writes a 640x360 clip from the bundled demo photo.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.app_bench import launch
from benchmarks.pipeline_bench import write_demo_video
from desktop.core.annotate import overlay_heatmap
from desktop.core.detector import FaceDetector
from model.checkpoint import SHIPPED_MODEL
from model.engine import load_predictor
from model.preprocess import faces_to_batch, to_gray
from model.saliency import occlusion_map

ROOT = Path(__file__).resolve().parents[1]

KEYS = ("displayed_fps", "explain_hz", "capture_to_paint_p95_ms", "max_ui_stall_ms", "pipeline_p50_ms")


def time_ms(call, repeats: int) -> dict[str, float]:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000.0 * (time.perf_counter() - start))
    return {"median_ms": round(float(np.median(times)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2)}


def map_costs(repeats: int) -> dict[str, dict[str, float]]:
    gray = to_gray(cv2.imread(str(ROOT / "assets" / "astronaut.png")))
    face = faces_to_batch(gray, FaceDetector().detect(gray)[:1])
    costs = {}
    for name, tta in (("map_with_flips", True), ("map_without_flips", False)):
        predict = load_predictor(SHIPPED_MODEL, device="cpu", tta=tta)
        costs[name] = time_ms(lambda predict=predict: occlusion_map(predict, face[0]), repeats)
        if tta:
            costs["one_face_with_flips"] = time_ms(lambda predict=predict: predict(face), repeats)
    # Drawing the map over a face, done on every frame while Explain is on (a 240 px face: near the camera).
    region = np.full((240, 240, 3), 128, np.uint8)
    heatmap = occlusion_map(predict, face[0]).heatmap
    costs["overlay_240px"] = time_ms(lambda: overlay_heatmap(region, heatmap), repeats)
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", type=Path, help="video file (default: a clip made from the demo photo)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per launch (default 20)")
    parser.add_argument("--runs", type=int, default=2, help="launches with Explain off and on (default 2)")
    parser.add_argument("--repeats", type=int, default=50, help="maps timed (default 50)")
    args = parser.parse_args(argv)

    figures: dict = {"map": map_costs(args.repeats)}
    for name, cost in figures["map"].items():
        print(f"{name:20} median {cost['median_ms']:6.1f} ms, p95 {cost['p95_ms']:6.1f} ms", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or write_demo_video(Path(tmp) / "demo.mp4", 300)
        figures["video"] = str(args.video or "generated 640x360 demo clip")
        for name, explain in (("explain_off", False), ("explain_on", True)):
            runs = [launch(video, args.seconds, *(["--explain"] if explain else [])) for _ in range(args.runs)]
            figures[name] = {key: statistics.median(r[key] for r in runs) for key in KEYS} | {"runs": runs}
            print(f"{name:12} (median of {args.runs}): " + ", ".join(f"{k} {figures[name][k]:.2f}" for k in KEYS))
    on, off = figures["explain_on"], figures["explain_off"]
    figures["on_over_off"] = {key: round(on[key] / off[key], 2) for key in KEYS if off[key]}
    print("on / off: " + ", ".join(f"{k} {v:.2f}x" for k, v in figures["on_over_off"].items()))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
