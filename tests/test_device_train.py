"""scripts/device_train.py: FER2013 packed for the device tool comes back byte for byte, PublicTest cut as asked."""

from __future__ import annotations

import csv
import gzip
import shutil

from conftest import synthetic_faces, write_fer_csv

from scripts.device_train import _epochs_done, pack, unpack


def test_pack_and_unpack_give_back_the_same_rows(tmp_path):
    x, y = synthetic_faces(30, seed=3)  # 210 faces: more than one mosaic row, fewer than one mosaic
    usage = ["Training"] * 150 + ["PublicTest"] * 60
    plain = write_fer_csv(tmp_path / "fer.csv", x, y, usage)
    with open(plain, "rb") as src, gzip.open(tmp_path / "fer.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    pack(tmp_path / "fer.csv.gz", tmp_path / "packed", public_test=25)
    assert unpack(tmp_path / "packed", tmp_path / "back.csv") == 175

    with open(plain, newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(tmp_path / "back.csv", newline="") as fh:
        back = list(csv.DictReader(fh))
    assert back == rows[:150] + rows[150:175]  # Training whole, then the first 25 PublicTest rows, pixels exact


def test_epoch_seconds_are_read_from_a_runs_progress_lines(tmp_path):
    log = tmp_path / "run.jsonl"
    lines = ['{"event": "epoch", "seconds": 3.5}', "not json", '{"event": "batch"}', '{"event": "epoch", "seconds": 2}']
    log.write_text("\n".join(lines) + "\n")
    assert _epochs_done(log) == [3.5, 2.0] and _epochs_done(tmp_path / "missing.jsonl") == []
