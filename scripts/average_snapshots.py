"""Score the weight average of per-epoch snapshots, the way ``--average-from`` would build it.

    python -m scripts.average_snapshots SNAPSHOT.keras... [--data CSV] [--write-npz RUN_DIR/average.npz]

Each SNAPSHOT is a run's ``last.keras`` copied after an epoch, named ``...epochNNN.keras``. Prints the
PublicTest accuracy of the mean weights with batch-norm statistics measured again on the training faces
(:mod:`model.averaging`, the same code the trainer runs). ``--write-npz`` saves the running mean as a
run's ``average.npz``, so that ``train_emotion.py train --resume RUN --average-from EPOCH`` finishes a run
that was started without averaging.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from model.averaging import WeightAverage, averaged_model
from model.checkpoint import load_model
from model.data import TRAIN, VAL, load_dataset
from model.inference import make_predictor, predict_in_batches
from model.metrics import compute_metrics

ROOT = Path(__file__).resolve().parents[1]


def epoch_of(path: Path) -> int:
    match = re.search(r"(\d+)\.keras$", path.name)
    if not match:
        raise SystemExit(f"error: {path}: name does not end in the epoch number (epochNNN.keras)")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshots", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz")
    parser.add_argument("--write-npz", type=Path, metavar="PATH", help="also save the mean as an average.npz")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch order for the statistics (default 0)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    snapshots = sorted(args.snapshots, key=epoch_of)
    average = WeightAverage()
    for path in snapshots:
        model = load_model(path).model  # the last one is the template for the mean
        average.add(model.get_weights(), epoch_of(path))
    if args.write_npz:
        average.save(args.write_npz)
    dataset = load_dataset(args.data)
    train, val = dataset.split(TRAIN), dataset.split(VAL)
    started = time.monotonic()
    model = averaged_model(model, average, train.x, seed=args.seed)
    seconds = time.monotonic() - started
    accuracy = compute_metrics(val.y, predict_in_batches(make_predictor(model), val.x).argmax(1)).accuracy
    print(f"{average.describe()}: PublicTest {accuracy:.2%} (batch-norm statistics in {seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
