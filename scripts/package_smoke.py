"""Smoke-test a PyInstaller build in a clean environment (no virtual environment on PATH).

    python -m scripts.package_smoke dist/EmotionLens

It writes a short video from the bundled demo photo and a tiny FER2013-style CSV (with this
interpreter's OpenCV and numpy), then runs the *frozen* executables with a minimal environment:
analyse the video to CSV; explain its faces (``analyze --explain``) and the demo photo's (``explain``);
open the GUI offscreen with Explain on for some frames and save a screenshot; train one epoch through
the frozen training sub-command and evaluate the result; run a model without its LiteRT twin. Exit 0
when all pass.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from model.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]


def write_video(path: Path, frames: int = 45) -> None:
    photo = cv2.imread(str(ROOT / "assets" / "astronaut.png"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 360))
    for i in range(frames):
        shift = 3 * i
        view = cv2.resize(photo[20 + shift // 3 : 308 + shift // 3, 40:552], (640, 360))
        writer.write(view)
    writer.release()


def write_csv(path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    for usage, n in (("Training", 6), ("PublicTest", 2)):
        for label in range(7):
            for _ in range(n):
                img = rng.integers(0, 60, (48, 48))
                img[8 + (label // 3) * 14 : 20 + (label // 3) * 14, 8 + (label % 3) * 14 : 20 + (label % 3) * 14] += 180
                lines.append(f"{label},{' '.join(map(str, img.reshape(-1)))},{usage}")
    path.write_text("\n".join(lines) + "\n")


def run(cmd: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), flush=True)
    t0 = time.monotonic()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"  exit {out.returncode} in {time.monotonic() - t0:.1f} s", flush=True)
    if out.returncode != 0:
        print(out.stdout[-3000:], out.stderr[-3000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"FAILED: {' '.join(cmd)}")
    return out


def main() -> int:
    dist = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dist" / "EmotionLens").resolve()
    app, cli = dist / "EmotionLens", dist / "EmotionLens-cli"
    if not app.is_file() or not cli.is_file():
        raise SystemExit(f"{dist}: no EmotionLens build there; run `make package` first")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {  # nothing from the developer's environment: no .venv, no PYTHONPATH
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp / "home"),
            "LANG": "C.UTF-8",
            "QT_QPA_PLATFORM": "offscreen",
            "EMOTION_LENS_DATA_DIR": str(tmp / "userdata"),
            "XDG_CONFIG_HOME": str(tmp / "config"),
        }
        video, data = tmp / "clip.mp4", tmp / "tiny.csv"
        write_video(video)
        write_csv(data)

        out = run([str(cli), "analyze", str(video), "--csv", str(tmp / "faces.csv")], env)
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        rows = list(csv.DictReader((tmp / "faces.csv").open()))
        assert summary["frames"] == 45 and summary["frames_with_faces"] > 0 and rows, summary
        assert summary["device"] == "CPU, LiteRT", summary  # the frozen app runs the model on LiteRT
        found = f"{summary['frames_with_faces']}/{summary['frames']}"
        print(f"  analyze: {found} frames with a face, {summary['fps']:.1f} fps, {summary['device']}")

        out = run([str(cli), "analyze", str(video), "--max-frames", "10", "--explain", str(tmp / "explained")], env)
        pictures = sorted((tmp / "explained").glob("*.png"))
        assert pictures and cv2.imread(str(pictures[0])) is not None, "analyze --explain wrote no picture"
        photo = tmp / "photo.png"
        cv2.imwrite(str(photo), cv2.imread(str(ROOT / "assets" / "astronaut.png")))
        out = run([str(cli), "explain", "--image", str(photo), "--out", str(tmp / "explained")], env)
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["faces"] and report["engine"] == "LiteRT", report
        print(f"  explain: {len(pictures)} picture(s) from analyze, {report['faces'][0]['emotion']} on the photo")

        shot = tmp / "window.png"
        run(
            [str(app), "--source", str(video), "--exit-after-frames", "20", "--screenshot", str(shot), "--explain"], env
        )
        image = cv2.imread(str(shot))
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 300, "no screenshot"
        print(f"  gui: screenshot {image.shape[1]}x{image.shape[0]}")

        run_dir = RunDir(tmp / "run")
        out = run([str(cli), "train", "--data", str(data), "--out", str(run_dir.path), "--epochs", "1", "--arch",
                   "seed", "--batch-size", "16"], env)  # fmt: skip
        assert "AutoGraph" not in out.stderr, out.stderr[-2000:]  # chatter a user would read as a fault
        out = run([str(cli), "evaluate", "--model", str(run_dir.best), "--data", str(data)], env)
        metrics = json.loads(out.stdout.strip().splitlines()[-1])
        assert metrics["n"] == 14 and metrics["engine"] == "LiteRT", metrics  # the trainer wrote the LiteRT twin
        print(f"  train + evaluate: 1 epoch, accuracy {metrics['accuracy']:.2f} on {metrics['n']} faces")

        # A model without its LiteRT twin: the frozen app converts it with its own `export` sub-command.
        run_dir.best.with_suffix(".tflite").unlink()
        out = run([str(cli), "analyze", str(video), "--model", str(run_dir.best), "--max-frames", "5"], env)
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        cached = list((tmp / "userdata" / "litert-cache").glob("*.tflite"))
        assert summary["device"] == "CPU, LiteRT" and len(cached) == 1, (summary, cached)
        print("  a model without a twin: converted in a child process, cached, run on LiteRT")
    print("package smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
