"""Make a run's best model (or an ensemble of several runs') the one the app ships, with its report.

    python -m scripts.ship_model RUN_DIR [RUN_DIR ...] [--flips | --no-flips] [--data fer2013.csv.gz]

Several runs become one ensemble model (model.ensemble: the mean of their probabilities). Flips
default to on for one net and off for an ensemble: two nets without flips cost what one net with
flips does, and stay inside the app's budget (benchmarks/model_bench.py).

Writes, atomically, into model/shipped/: emotion_lens.keras (inference only, no optimizer
state), its LiteRT twin emotion_lens.tflite, emotion_lens.json (its metadata), metrics.json
(PublicTest, the split the model was selected on, as the app runs it: with flip TTA; and
without flips for reference), curves.png and confusion.png.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from model.checkpoint import SHIPPED_MODEL, atomic_write_json, load_model, save_model
from model.data import VAL, load_dataset
from model.engine import evaluate_model
from model.ensemble import combine
from model.reports import read_history, write_plots
from model.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run folders with best.keras and history.csv")
    parser.add_argument("--flips", action=argparse.BooleanOptionalAction, help="flip TTA (default: one net only)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz")
    args = parser.parse_args()

    members = [load_model(RunDir(run).best) for run in args.runs]
    if len(members) == 1:
        model, metadata = members[0].model, members[0].metadata
    else:
        model, metadata = combine(members, [run.name for run in args.runs])
    # Flip TTA: on LiteRT a face and its mirror in one call cost ~0.4 ms more per face, for +0.3 points on
    # PublicTest and +0.5 on faces-in-the-wild (measured with the model shipped on 2026-11-27).
    metadata.tta = len(members) == 1 if args.flips is None else args.flips
    save_model(model, SHIPPED_MODEL, metadata)
    split = load_dataset(args.data).split(VAL)
    metrics = evaluate_model(SHIPPED_MODEL, split)  # as the app runs it
    other = evaluate_model(SHIPPED_MODEL, split, tta=not metadata.tta)
    shipped = SHIPPED_MODEL.parent
    other_key = f"accuracy_{'without' if metadata.tta else 'with'}_flips"
    report = {"split": VAL, **metrics.to_dict(), other_key: other.accuracy,
              "runs": [run.name for run in args.runs], "tta": metadata.tta,
              "best_epoch": [m.metadata.best_epoch for m in members],
              "averaged_epochs": [m.metadata.averaged_epochs for m in members]}  # fmt: skip
    atomic_write_json(shipped / "metrics.json", report)
    write_plots(shipped, read_history(RunDir(args.runs[0]).history), metrics)  # the curves of the first run
    recall = ", ".join(f"{k} {v['recall']:.1%}" for k, v in metrics.per_class.items())
    for run, member in zip(args.runs, members, strict=True):
        first_last = member.metadata.averaged_epochs
        which = (
            f"mean of epochs {first_last[0]}-{first_last[1]}" if first_last else f"epoch {member.metadata.best_epoch}"
        )
        print(f"shipped {RunDir(run).best} ({which})")
    flips = "with flips" if metadata.tta else "without flips"
    print(f"PublicTest accuracy {metrics.accuracy:.2%} {flips} ({other.accuracy:.2%} otherwise)")
    print(f"macro-F1 {metrics.macro_f1:.3f}")
    print(f"recall: {recall}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
