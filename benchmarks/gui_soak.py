"""A long soak of the real window: memory, UI stalls and dropped frames, and evidence if it dies.

    python -X faulthandler -m benchmarks.gui_soak [--minutes 60] [--swap-every 300] [--train-minutes 20] [--out DIR]

- The real :class:`MainWindow` (offscreen Qt) plays a looping 640x360 clip written from the demo photo in
  which the face comes and goes (2 s with it, 1 s of an empty frame).
- Every ``--swap-every`` seconds it switches models, between the shipped one and a copy without its LiteRT
  twin (the first switch converts it in a child process, later ones find it in the cache).
- For the first ``--train-minutes`` a real training run goes on beside it in its own process, as when
  Retrain is running (the small ``seed`` network on synthetic faces, so it never finishes first).
- ``faulthandler`` writes every thread's stack to ``OUT/faulthandler.log`` on a fatal signal, and the app's
  log is ``OUT/userdata/logs/emotion_lens.log``: a crash leaves evidence there.

Reports resident memory after a minute's warm-up and at the end (target: growth under 50 MB), a sample
every minute, the longest UI stall, frames shown against frames the clip delivered, the model switches,
the errors shown, and how the window closed. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FPS = 30.0


def write_clip(path: Path, seconds: float = 9.0) -> Path:
    """The demo face for 2 s, then 1 s without it, three times (the file loops)."""
    from desktop.core.sources import DemoSource

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (640, 360))
    with DemoSource(size=(640, 360), fps=FPS) as demo:
        for i in range(int(seconds * FPS)):
            image = demo.read().image
            writer.write(image if (i // int(FPS)) % 3 != 2 else np.full_like(image, 90))
    writer.release()
    return path


def write_faces_csv(path: Path, n: int = 2000) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w") as fh:
        fh.write("emotion,pixels\n")
        for i in range(n):
            fh.write(f"{i % 7},{' '.join(map(str, rng.integers(0, 256, 48 * 48)))}\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="how long the window plays (default 60)")
    parser.add_argument("--swap-every", type=float, default=300.0, help="seconds between model switches (300)")
    parser.add_argument("--train-minutes", type=float, default=20.0, help="minutes a training runs beside it (20)")
    parser.add_argument("--out", type=Path, default=Path("soak-out"), help="logs and evidence (default soak-out/)")
    args = parser.parse_args(argv)

    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    (out / "userdata").mkdir(parents=True)
    os.environ["EMOTION_LENS_DATA_DIR"] = str(out / "userdata")  # the app's log and caches, before any import
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    crash_log = (out / "faulthandler.log").open("w")
    faulthandler.enable(file=crash_log, all_threads=True)

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.__main__ import configure_logging
    from desktop.core.classifier import EmotionClassifier
    from desktop.core.memory import rss_mb
    from desktop.ui.app import install_excepthook
    from desktop.ui.main_window import MainWindow
    from model.checkpoint import SHIPPED_MODEL, metadata_path

    log_file = configure_logging("WARNING")
    clip = write_clip(out / "clip.mp4")
    other = out / "other" / "emotion_lens.keras"  # the shipped weights under another name, without a LiteRT twin
    other.parent.mkdir()
    shutil.copy(SHIPPED_MODEL, other)
    shutil.copy(metadata_path(SHIPPED_MODEL), metadata_path(other))

    app = QApplication([])
    install_excepthook(log_file)
    window = MainWindow(
        EmotionClassifier(fallback=True),
        source=str(clip),
        settings=QSettings(str(out / "settings.ini"), QSettings.Format.IniFormat),
    )
    window.show()
    seconds = 60.0 * args.minutes
    monitor = window.bench(seconds)  # loops the clip, measures UI stalls from the first frame, then closes
    figures: dict = {"minutes": args.minutes, "rss_mb": [], "swaps_asked": 0, "models_loaded": 0}

    def loaded(_path: str) -> None:
        figures["models_loaded"] += 1

    window.host.worker.modelLoaded.connect(loaded)
    started = time.monotonic()
    trainer = subprocess.Popen(
        [sys.executable, str(ROOT / "train_emotion.py"), "train", "--data", str(write_faces_csv(out / "faces.csv")),
         "--out", str(out / "run"), "--arch", "seed", "--epochs", "100000", "--batch-size", "32"],
        stdout=subprocess.DEVNULL, stderr=(out / "trainer.log").open("w"),
    )  # fmt: skip

    def sample() -> None:
        figures["rss_mb"].append([round(time.monotonic() - started), round(rss_mb(), 1)])
        if trainer.poll() is None and time.monotonic() - started > 60.0 * args.train_minutes:
            trainer.terminate()

    def swap() -> None:
        figures["swaps_asked"] += 1
        window.use_model(other if figures["swaps_asked"] % 2 else SHIPPED_MODEL)

    timers = [QTimer(), QTimer()]
    timers[0].timeout.connect(sample)
    timers[0].start(60_000)
    timers[1].timeout.connect(swap)
    timers[1].start(round(args.swap_every * 1000))
    code = app.exec()
    for timer in timers:
        timer.stop()
    if trainer.poll() is None:
        trainer.terminate()
    trainer.wait(30)

    report = window.bench_result or monitor.report()
    rss = figures["rss_mb"]
    start_mb, end_mb = (rss[0][1] if rss else None), rss_mb()
    figures.update(
        exit_code=code,
        closed=window.host.thread.isFinished(),
        rss_start_mb=start_mb,
        rss_end_mb=round(end_mb, 1),
        rss_growth_mb=round(end_mb - start_mb, 1) if start_mb is not None else None,
        max_ui_stall_ms=report["max_ui_stall_ms"],
        ui_stalls_over_30ms=report["ui_stalls_over_30ms"],
        frames_shown=report["frames_painted"],
        frames_the_clip_delivered=round(report["seconds"] * FPS),
        # The clip's count is its rate times the time measured, so it is exact to a frame either way.
        frames_dropped=max(round(report["seconds"] * FPS) - report["frames_painted"], 0),
        displayed_fps=report["displayed_fps"],
        errors_shown=window.errors,
        trainer_exit=trainer.returncode,
        evidence={"faulthandler": str(out / "faulthandler.log"), "app_log": str(log_file)},
    )
    print(
        f"{args.minutes:g} min: RSS {start_mb} -> {end_mb:.1f} MB, longest UI stall "
        f"{report['max_ui_stall_ms']:.0f} ms, {figures['frames_dropped']} of {figures['frames_the_clip_delivered']} "
        f"frames not shown, {figures['models_loaded']} models loaded (the first at start) for "
        f"{figures['swaps_asked']} switches, exit {code}"
    )
    print(json.dumps(figures))
    return code


if __name__ == "__main__":
    sys.exit(main())
