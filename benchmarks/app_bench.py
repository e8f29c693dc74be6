"""The whole app, launched as a user launches it: time to the first labelled face, memory, UI latency.

    python -m benchmarks.app_bench [VIDEO] [--seconds 34] [--runs 3]

Each run starts ``python -m desktop --source VIDEO --bench-seconds N`` in a fresh process
(offscreen Qt), and reads its report: seconds from the launch to the first painted frame with a
labelled face, resident memory at the end (~1,000 frames at 30 fps for the default 34 s),
displayed fps, capture-to-paint p95 and the longest UI stall, and whether TensorFlow was loaded;
once with the engine the app picks (LiteRT on the CPU), once with ``EMOTION_LENS_ENGINE=tensorflow``
(the engine before LiteRT), and the ratios. With no VIDEO it writes a 640x360 clip from the
bundled demo photo. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.pipeline_bench import write_demo_video
from desktop.ui.latency import LAUNCHED_ENV
from model.engine import ENGINE_ENV

ROOT = Path(__file__).resolve().parents[1]

KEYS = ("launch_to_first_label_s", "rss_mb", "displayed_fps", "capture_to_paint_p95_ms", "max_ui_stall_ms")


def launch(video: Path, seconds: float, *options: str, engine: str = "") -> dict:
    """``python -m desktop --source VIDEO --bench-seconds N [OPTIONS]`` in a fresh process; its report."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TF_CPP_MIN_LOG_LEVEL": "3", ENGINE_ENV: engine}
    with tempfile.TemporaryDirectory() as home:  # fresh settings and user data: a first launch
        env.update(XDG_CONFIG_HOME=home, EMOTION_LENS_DATA_DIR=home)
        env[LAUNCHED_ENV] = repr(time.time())
        done = subprocess.run(
            [sys.executable, "-m", "desktop", "--source", str(video), "--bench-seconds", str(seconds), *options],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 180,
        )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the app ({engine or 'default engine'}) exited with {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", type=Path, help="video file (default: a clip made from the demo photo)")
    parser.add_argument("--seconds", type=float, default=34.0, help="measured seconds per run (default 34)")
    parser.add_argument("--runs", type=int, default=3, help="launches per app (default 3)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or write_demo_video(Path(tmp) / "demo.mp4", 300)
        figures: dict = {"video": str(args.video or "generated 640x360 demo clip"), "apps": {}}
        for name, engine in (("default", ""), ("tensorflow", "tensorflow")):
            runs = [launch(video, args.seconds, engine=engine) for _ in range(args.runs)]
            figures["apps"][name] = {
                "tensorflow_loaded": [r["tensorflow_loaded"] for r in runs],
                "runs": runs,
                **{key: statistics.median(r[key] for r in runs if r.get(key) is not None) for key in KEYS},
            }
            summary = ", ".join(f"{key} {figures['apps'][name][key]:.2f}" for key in KEYS)
            print(f"{name:10} (median of {args.runs}): {summary}", flush=True)
    this, base = figures["apps"]["default"], figures["apps"]["tensorflow"]
    figures["tensorflow_over_default"] = {key: base[key] / this[key] for key in KEYS if this[key]}
    print("tensorflow / default: " + ", ".join(f"{k} {v:.2f}x" for k, v in figures["tensorflow_over_default"].items()))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
