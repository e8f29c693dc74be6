"""FER+ crowd votes as soft training targets for FER2013 rows.

FER+ (Barsoum et al. 2016) had 10 annotators label every FER2013 face. Their vote shares say what a
single FER2013 label hides: that a face is half Neutral, half Sad, or that nobody can tell. A target
that mixes the FER2013 label with the vote shares keeps the benchmark's labels while teaching which
wrong answers are nearly right — the same idea as distillation, with people as the teacher.

The votes file (``../shared/data/ferplus/ferplus_votes.csv.gz``) has one line per data row of the
FER2013 CSV, in the same order: ``row,Usage,neutral,happiness,surprise,sadness,anger,disgust,fear,
contempt,unknown,NF``. ``contempt`` has no FER2013 class, and ``unknown``/``NF`` are not emotions, so
they are dropped and the seven remaining counts are normalised.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np

from model.data import DatasetError, canonical_split
from model.spec import NUM_CLASSES

#: FER+ emotion columns, in the file's order, and the FER2013 label each one maps to.
FERPLUS_TO_FER2013 = {
    "neutral": 6,
    "happiness": 3,
    "surprise": 5,
    "sadness": 4,
    "anger": 0,
    "disgust": 1,
    "fear": 2,
}


def read_votes(path: str | Path, split: str) -> np.ndarray:
    """Vote shares (N, 7) in FER2013 label order for the rows of ``split``, in file order.

    A row without a single emotion vote (all ``contempt``, ``unknown`` or ``NF``) is all zeros: the
    caller keeps its FER2013 label alone.
    """
    path = Path(path).expanduser()
    want = canonical_split(split)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as raw:
            reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
            missing = {"Usage", *FERPLUS_TO_FER2013} - set(reader.fieldnames or [])
            if missing:
                raise DatasetError(f"{path}: not a FER+ votes file (missing columns: {', '.join(sorted(missing))})")
            rows = [
                [float(row[name]) for name in FERPLUS_TO_FER2013]
                for row in reader
                if canonical_split(row["Usage"]) == want
            ]
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the FER+ votes ({exc})") from exc
    counts = np.zeros((len(rows), NUM_CLASSES), np.float32)
    if rows:
        counts[:, list(FERPLUS_TO_FER2013.values())] = np.asarray(rows, np.float32)
    totals = counts.sum(1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def mix_targets(labels: np.ndarray, votes: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight)`` one-hot FER2013 label plus ``weight`` vote shares; rows without votes stay one-hot."""
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    if len(votes) != len(labels):
        raise DatasetError(
            f"the FER+ votes have {len(votes)} rows but the training split has {len(labels)} faces: "
            "they must come from the same FER2013 file, with no rows skipped"
        )
    has_votes = votes.sum(1, keepdims=True) > 0
    return np.where(has_votes, (1.0 - weight) * onehot + weight * votes, onehot).astype(np.float32)
