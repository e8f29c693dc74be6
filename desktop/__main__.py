"""Entry point: ``python -m desktop`` opens the window; ``python -m desktop analyze INPUT`` runs headless.

``python -m desktop train ...``, ``evaluate ...`` and ``export ...`` run ``train_emotion.py``: a
frozen app has no script to run, so the Retrain dialog (and the model converter) start its own
executable with these sub-commands.

Logging is configured here and only here: a rotating log file in the user data folder
(where the excepthook also writes tracebacks) and warnings on stderr.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

import cv2

from desktop.core.classifier import DEVICES
from desktop.core.errors import USER_ERRORS, unexpected_error_message
from desktop.core.sources import SourceError
from model.userdata import user_data_dir

log = logging.getLogger("desktop")

#: What ``analyze`` shows as one line, no traceback: the app's user errors and, on the command line,
#: ``ValueError``, which the checks of its arguments raise (``--every 0``, ``--max-frames 0``).
CLI_ERRORS = (*USER_ERRORS, ValueError)


def configure_logging(level: str = "WARNING") -> Path | None:
    """Log everything from INFO to a file in the user data folder, ``level`` and up to stderr.

    Records that carry a traceback go to the file only: the user sees one line.
    """
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # no warnings while probing cameras
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    console.addFilter(lambda record: not record.exc_info)  # tracebacks go to the file only
    root.addHandler(console)
    log_file = user_data_dir() / "logs" / "emotion_lens.log"
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the log file %s (%s)", log_file, exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return log_file


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="a .keras model file (default: the shipped model)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where the model runs (default: auto)")
    parser.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m desktop",
        description="Emotion Lens: the emotions of every face in a webcam or video. "
        "'python -m desktop analyze --help' for headless analysis.",
    )
    parser.add_argument(
        "--source",
        help="a video, image or image folder, a camera index or 'demo' "
        "(default: the last one shown, else the webcam, else the demo)",
    )
    _common_options(parser)
    parser.add_argument(
        "--explain",
        action="store_true",
        help="start with Explain on: a heat map of what drove the largest face's label",
    )
    parser.add_argument("--exit-after-frames", type=int, metavar="N", help="quit after N processed frames (tests)")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png", help="with --exit-after-frames: save the window")
    parser.add_argument(
        "--bench-seconds",
        type=float,
        metavar="N",
        help="measure the GUI for N seconds from the first frame shown (the source loops), then print "
        "capture-to-paint latency, displayed fps, overlay rate and the longest UI stall as JSON and quit",
    )
    return parser


def analyze_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m desktop analyze",
        description="Find every face in a video, image or folder of images and classify its emotion. "
        "Prints a progress bar on stderr and a one-line JSON summary as the last line of stdout.",
    )
    parser.add_argument("input", type=Path, help="a video file, an image or a folder of images")
    parser.add_argument("--csv", type=Path, help="one row per face per frame")
    parser.add_argument("--json", type=Path, help="all results and the summary")
    parser.add_argument("--annotated", type=Path, metavar="OUT.mp4", help="the video with boxes and labels")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="the 7 probabilities per face over time")
    parser.add_argument(
        "--explain",
        type=Path,
        metavar="DIR",
        help="write a picture per face of sampled frames to DIR: the face as the model saw it, a heat map of the "
        "parts that drove its label (occlusion sensitivity), and its bars",
    )
    parser.add_argument(
        "--explain-every",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --explain: seconds of video between two explained frames (default: 1)",
    )
    parser.add_argument("--every", type=int, default=1, metavar="N", help="process every N-th frame (default: 1)")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N processed frames")
    _common_options(parser)
    return parser


class ProgressBar:
    """A one-line bar on stderr, redrawn at most ten times a second (a line per 10% when not a terminal)."""

    def __init__(self, stream=sys.stderr) -> None:
        self._stream, self._tty = stream, stream.isatty()
        self._start: float | None = None
        self._last = 0.0
        self._last_decile = -1

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now - 1e-9  # the rate counts from the first frame (model loading excluded)
        finished = total is not None and done >= total
        fps = (done - 1) / (now - self._start)
        if total:
            filled = int(30 * done / total)
            text = f"[{'#' * filled}{'-' * (30 - filled)}] {done}/{total} frames, {fps:.1f} fps"
        else:
            text = f"{done} frames, {fps:.1f} fps"
        if self._tty:
            if finished or now - self._last >= 0.1:
                self._stream.write(f"\r{text}" + ("\n" if finished else ""))
                self._stream.flush()
                self._last = now
        else:
            decile = 10 * done // total if total else done // 100
            if decile != self._last_decile:
                self._stream.write(text + "\n")
                self._last_decile = decile


def run_analyze(args: argparse.Namespace) -> int:
    from desktop.core.analyze import AnalyzeOutputs, analyze
    from desktop.core.classifier import EmotionClassifier
    from desktop.core.export import summary_line
    from desktop.core.pipeline import Pipeline
    from desktop.core.sources import open_source

    with open_source(args.input) as source:  # before loading the model: a bad input fails at once
        if source.info.live:
            raise SourceError(f"{args.input}: analyze reads files; use the GUI for a camera")
        classifier = EmotionClassifier(args.model, device=args.device)
        pipeline = Pipeline(classifier)
        outputs = AnalyzeOutputs(args.csv, args.json, args.annotated, args.plot, args.explain, args.explain_every)
        _, summary = analyze(
            source, pipeline, every=args.every, max_frames=args.max_frames, outputs=outputs, progress=ProgressBar()
        )
    if summary.decode_errors:
        log.warning("%s: %d frames failed to decode and were skipped", args.input, summary.decode_errors)
    print(summary_line(summary, input=str(args.input), model=classifier.name, device=classifier.device), flush=True)
    return 0


def run_trainer(argv: list[str]) -> int:
    """``train``, ``evaluate``, ``export``: ``train_emotion.py``'s command line (it configures its own logging)."""
    try:
        import train_emotion
    except ModuleNotFoundError:  # a checkout run from another folder: the script sits at the project root
        from desktop.core.resources import resource_path

        sys.path.insert(0, str(resource_path("train_emotion.py").parent))
        import train_emotion
    prog = Path(sys.argv[0]).name if getattr(sys, "frozen", False) else "python -m desktop"
    return train_emotion.main(argv, prog=prog)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["train"], ["evaluate"], ["export"], ["explain"]):
        return run_trainer(argv)
    headless = argv[:1] == ["analyze"]
    args = analyze_parser().parse_args(argv[1:]) if headless else gui_parser().parse_args(argv)
    log_file = configure_logging(args.log_level)
    if not headless:
        from desktop.ui.app import run_gui

        return run_gui(args, log_file)
    try:
        return run_analyze(args)
    except CLI_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last resort at the process boundary: log the traceback, show one line
        log.error("unexpected error", exc_info=True)
        print(f"error: {unexpected_error_message(exc, log_file)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
