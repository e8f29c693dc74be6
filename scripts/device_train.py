"""Train several runs side by side on a lent GPU machine, within its short lease.

The device tool sends the work tree (64 MiB at most) and brings back at most 8 files of 16 MiB. FER2013
as CSV (84 MB gzipped) does not fit, so ``pack`` stores its faces losslessly as WebP mosaics (~50 MB),
and ``run`` rebuilds the CSV there, trains the runs in parallel processes under Keras's JAX backend,
stops the least important runs early if the rest would not finish in time, and packs one archive per
run (its ``best.keras`` and small files) into ``$OUT``::

    python -m scripts.device_train pack --data ../shared/data/fer2013/fer2013.csv.gz --out .gpudata
    cp ../shared/data/ferplus/ferplus_votes.csv.gz .gpudata/      # for --soft-labels {packed}/ferplus_votes.csv.gz
    pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
        -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0           # the GPU image has JAX but no Keras
    # .gpudata and .whl are listed in .git/info/exclude and named in the device tool's carry.
    # on the device machine, after `pip install --no-index --no-deps --target /tmp/site .whl/*.whl`
    # and PYTHONPATH=/tmp/site:
    python3 -m scripts.device_train run --packed .gpudata --runs .gpudata/runs.json --out $OUT --deadline 480

runs.json, as used for the 2026-11-27 runs (the first two are the shipped ensemble's members' recipes)::

    [{"name": "f25s1", "epochs": 80, "args": ["--scale", "0.7", "1.15", "--seed", "1",
      "--soft-labels", "{packed}/ferplus_votes.csv.gz", "--soft-weight", "0.25"]},
     {"name": "f50s0", "epochs": 80, "args": ["--scale", "0.7", "1.15", "--seed", "0",
      "--soft-labels", "{packed}/ferplus_votes.csv.gz", "--soft-weight", "0.5"]}]

A distilled student takes the four-net teachers' targets from a run that computed them (``teacher.npy``,
0.8 MB, for FER2013's Training rows in file order, which ``pack`` keeps), not the teachers' files (~20 MB):
copy it and the ``teacher.json`` beside it (which faces it is for) to ``.gpudata/`` and add
``"--teacher", "{packed}/teacher.npy", "--teacher-weight", "0.7"`` to the run's args.

Size: the 64 MiB the tool sends holds the tracked files too. On 2026-11-29 those were 24.8 MB, the packed faces
49.5 MB (lossless WebP; PNG and xz are larger): together over the limit. Nothing the training reads is in
``model/shipped/`` or ``wip/`` (22 MB of it), so move them out of the checkout for the call and back after it
(not tried yet).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("device_train")

SIDE = 48
GRID = 100  # faces per mosaic row and column: one WebP of up to 10,000 faces


def pack(data: Path, out: Path, public_test: int) -> None:
    """FER2013 rows as lossless WebP mosaics plus labels; only the first ``public_test`` PublicTest rows."""
    out.mkdir(parents=True, exist_ok=True)
    labels, usages, faces = [], [], []
    kept_public = 0
    with gzip.open(data, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Usage"] == "PublicTest":
                if kept_public >= public_test:
                    continue
                kept_public += 1
            labels.append(int(row["emotion"]))
            usages.append(row["Usage"])
            faces.append(np.array(row["pixels"].split(), np.uint8).reshape(SIDE, SIDE))
    for i, start in enumerate(range(0, len(faces), GRID * GRID)):
        chunk = faces[start : start + GRID * GRID]
        chunk += [np.zeros((SIDE, SIDE), np.uint8)] * (GRID * GRID - len(chunk))
        mosaic = np.vstack([np.hstack(chunk[r * GRID : (r + 1) * GRID]) for r in range(GRID)])
        ok, buf = cv2.imencode(".webp", mosaic, [cv2.IMWRITE_WEBP_QUALITY, 101])  # > 100: lossless
        if not ok:
            raise RuntimeError("WebP encoding failed")
        (out / f"faces{i}.webp").write_bytes(buf.tobytes())
    public = np.array([u == "PublicTest" for u in usages])
    np.savez_compressed(out / "labels.npz", emotion=np.array(labels, np.uint8), public=public)
    log.info("%d faces (%d PublicTest) packed into %s", len(faces), kept_public, out)


def unpack(packed: Path, csv_path: Path) -> int:
    """Write the FER2013 CSV back from ``pack``'s files; returns the number of rows."""
    meta = np.load(packed / "labels.npz")
    emotion = meta["emotion"]
    usage = np.where(meta["public"], "PublicTest", "Training")
    faces = []
    for i in range(len(list(packed.glob("faces*.webp")))):
        mosaic = cv2.imread(str(packed / f"faces{i}.webp"), cv2.IMREAD_GRAYSCALE)
        tiles = mosaic.reshape(GRID, SIDE, GRID, SIDE).swapaxes(1, 2).reshape(-1, SIDE, SIDE)
        faces += list(tiles)
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for label, use, face in zip(emotion, usage, faces, strict=False):
            writer.writerow([int(label), " ".join(map(str, face.ravel().tolist())), str(use)])
    return len(emotion)


def _epochs_done(jsonl: Path) -> list[float]:
    """Seconds of each finished epoch, from a run's progress events."""
    if not jsonl.exists():
        return []
    seconds = []
    for line in jsonl.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("event") == "epoch":
            seconds.append(float(event.get("seconds", 0.0)))
    return seconds


def run(packed: Path, runs_file: Path, out: Path, deadline: float, work: Path) -> None:
    """Train every run of ``runs_file`` (name, priority order, train options) side by side."""
    started = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    data = work / "fer2013.csv"
    rows = unpack(packed, data)
    log.info("unpacked %d rows in %.0f s", rows, time.monotonic() - started)
    specs = json.loads(runs_file.read_text())
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
           "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    procs: dict[str, subprocess.Popen] = {}
    for spec in specs:
        name, epochs = spec["name"], int(spec["epochs"])
        options = [a.format(packed=packed) for a in spec.get("args", [])]
        cmd = [sys.executable, "train_emotion.py", "train", "--data", str(data), "--out", str(work / name),
               "--epochs", str(epochs), "--progress-jsonl", str(work / f"{name}.jsonl"), *options]  # fmt: skip
        log.info("start %s: %s", name, " ".join(cmd))
        with open(work / f"{name}.log", "w") as logfile:
            procs[name] = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, env=env)
    epochs_of = {s["name"]: int(s["epochs"]) for s in specs}
    last_kill = 0.0
    while any(p.poll() is None for p in procs.values()):
        time.sleep(10)
        elapsed = time.monotonic() - started
        running = [n for n in procs if procs[n].poll() is None]
        done = {name: _epochs_done(work / f"{name}.jsonl") for name in running}
        finish = {  # the first epoch includes compilation; + 30 s for the weight average
            name: elapsed + float(np.median(seconds[-3:])) * (epochs_of[name] - len(seconds)) + 30
            for name, seconds in done.items()
            if len(seconds) >= 4
        }
        summary = ", ".join(f"{n} {len(done[n])}/{epochs_of[n]}" for n in running)
        log.info("%.0f s: %s", elapsed, summary)
        late = [n for n in running if finish.get(n, 0) > deadline]
        if late and len(running) > 1 and elapsed - last_kill > 40:  # free the processors: drop the last-listed run
            victim, last_kill = running[-1], elapsed
            log.warning("projected finish %.0f s > %.0f s: stopping %s", max(finish.values()), deadline, victim)
            procs[victim].kill()
        if elapsed > deadline:
            for name in running:
                log.warning("deadline: stopping %s", name)
                procs[name].kill()
            break
    for name, proc in procs.items():
        proc.wait()
        folder = work / name
        with tarfile.open(out / f"{name}.tar.gz", "w:gz") as tar:
            for f in ["best.keras", "best.json", "config.json", "state.json", "history.csv", "metrics.json"]:
                if (folder / f).exists():
                    tar.add(folder / f, arcname=f"{name}/{f}")
            for f in [work / f"{name}.jsonl", work / f"{name}.log"]:
                tar.add(f, arcname=f"{name}/{f.name}")
        log.info("%s: exit %s, %s", name, proc.returncode, (out / f"{name}.tar.gz").stat().st_size)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="FER2013 CSV -> WebP mosaics (here)")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--public-test", type=int, default=2000, help="PublicTest rows to keep (validation only)")
    r = sub.add_parser("run", help="train the runs (there)")
    r.add_argument("--packed", type=Path, required=True)
    r.add_argument(
        "--runs", type=Path, required=True, help='JSON list of {"name", "epochs", "args": [...]}, most important first'
    )
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--deadline", type=float, default=480.0, help="seconds after which every run is stopped")
    r.add_argument("--work", type=Path, default=Path("/tmp/device-runs"))
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.data, args.out, args.public_test)
    else:
        run(args.packed, args.runs, args.out, args.deadline, args.work)


if __name__ == "__main__":
    main()
