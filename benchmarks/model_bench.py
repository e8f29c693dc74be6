#!/usr/bin/env python3
"""Size and CPU inference time of a model file, called the way the app calls it.

    python benchmarks/model_bench.py [MODEL.keras] [--repeats 300]

Prints parameters, FLOPs per face, file size, and the median and p95 time of one compiled
call (:func:`model.inference.make_predictor`) on batches of 1, 4 and 16 faces, with and
without flip test-time augmentation. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from model.checkpoint import SHIPPED_MODEL, load_model
from model.inference import make_predictor


def flops_per_face(model) -> int:
    """Multiply-adds of the convolutions and dense layers, times two."""
    macs = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            _, oh, ow, _ = layer.output.shape
            macs += oh * ow * kh * kw * cin * cout
        elif kind == "Dense":
            macs += layer.kernel.shape[0] * layer.kernel.shape[1]
    return 2 * macs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", type=Path, default=SHIPPED_MODEL, help="model file (default: shipped)")
    parser.add_argument("--repeats", type=int, default=300, help="calls per measurement (default 300)")
    args = parser.parse_args(argv)

    loaded = load_model(args.model)
    figures: dict = {
        "model": str(args.model),
        "params": int(loaded.model.count_params()),
        "mflops_per_face": flops_per_face(loaded.model) / 1e6,
        "file_mb": args.model.stat().st_size / 2**20,
        "calls": {},
    }
    rng = np.random.default_rng(0)
    for tta in (False, True):
        predict = make_predictor(loaded.model, tta=tta)
        for batch in (1, 4, 16):
            x = rng.uniform(0, 255, (batch, 48, 48, 1)).astype(np.float32)
            for _ in range(10):
                predict(x)
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                predict(x)
                times.append(1000 * (time.perf_counter() - t))
            key = f"batch{batch}{'_tta' if tta else ''}"
            figures["calls"][key] = {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95))}
            print(f"{key:12} median {np.median(times):6.2f} ms   p95 {np.percentile(times, 95):6.2f} ms")
    print(f"{figures['params']:,} params, {figures['mflops_per_face']:.1f} MFLOP per face, {figures['file_mb']:.1f} MB")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
