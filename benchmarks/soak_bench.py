"""Soak test of the headless pipeline: resident memory at the start and end of a long run.

    python -m benchmarks.soak_bench [--frames 10000]

Runs the same ``Pipeline`` the app and ``analyze`` use over the bundled demo source (a
panned and zoomed photo with one face) and reports resident memory (RSS) after warm-up,
every 1,000 frames and at the end. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from desktop.core.classifier import EmotionClassifier
from desktop.core.memory import rss_mb
from desktop.core.pipeline import Pipeline
from desktop.core.sources import DemoSource


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000, help="frames to process (default 10000)")
    parser.add_argument("--warmup", type=int, default=200, help="frames before the start measurement (default 200)")
    args = parser.parse_args(argv)

    source = DemoSource(size=(640, 360))
    pipeline = Pipeline(EmotionClassifier())
    pipeline.classifier.load()
    for _ in range(args.warmup):
        frame = source.read()
        pipeline.process(frame.image, index=frame.index, time_s=frame.time_s)
    start_mb = rss_mb()
    samples, faces = [], 0
    t0 = time.perf_counter()
    for i in range(1, args.frames + 1):
        frame = source.read()
        faces += len(pipeline.process(frame.image, index=frame.index, time_s=frame.time_s).faces)
        if i % 1000 == 0:
            samples.append(round(rss_mb(), 1))
            print(f"{i:6d} frames  rss {samples[-1]:7.1f} MB", flush=True)
    seconds = time.perf_counter() - t0
    end_mb = rss_mb()
    figures = {
        "frames": args.frames,
        "fps": args.frames / seconds,
        "faces": faces,
        "rss_start_mb": round(start_mb, 1),
        "rss_end_mb": round(end_mb, 1),
        "rss_growth_mb": round(end_mb - start_mb, 1),
        "rss_every_1000_frames_mb": samples,
    }
    print(f"rss {start_mb:.1f} MB -> {end_mb:.1f} MB (growth {end_mb - start_mb:+.1f} MB) over {args.frames} frames")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
