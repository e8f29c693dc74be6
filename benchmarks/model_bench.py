"""Size and CPU inference time of a model file on both engines, side by side in one run.

    python -m benchmarks.model_bench [MODEL.keras] [--repeats 300]

Prints parameters, FLOPs per face, file size, and the median and p95 time of one call on
batches of 1, 4 and 8 faces, with and without flip test-time augmentation, for
- LiteRT with 2 threads: what the app runs on the CPU (:func:`model.engine.load_predictor`),
- LiteRT with 1 thread,
- TensorFlow: a traced ``tf.function`` (:func:`model.inference.make_predictor`), the engine before LiteRT
  and still the one on a GPU,
and the ratio TensorFlow / LiteRT, then 4 faces as the app runs them against the budget of 10 ms (p95).
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from model.checkpoint import SHIPPED_MODEL, load_model
from model.engine import cache_dir, load_predictor
from model.inference import make_predictor
from model.litert import LiteRTModel, file_sha256, tflite_path

#: p95 of one call for 4 faces on the engine the app uses on the CPU: the model issue's budget.
BUDGET_MS = 10.0


def flops_per_face(model) -> int:
    """Multiply-adds of the convolutions and dense layers (of every member of an ensemble), times two."""
    macs = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if hasattr(layer, "layers"):  # a nested model: an ensemble's member
            macs += flops_per_face(layer) // 2
        elif kind == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            _, oh, ow, _ = layer.output.shape
            macs += oh * ow * kh * kw * cin * cout
        elif kind == "Dense":
            macs += layer.kernel.shape[0] * layer.kernel.shape[1]
    return 2 * macs


def time_calls(predict, batch: int, repeats: int) -> dict[str, float]:
    x = np.random.default_rng(0).uniform(0, 255, (batch, 48, 48, 1)).astype(np.float32)
    for _ in range(20):
        predict(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        predict(x)
        times.append(1000 * (time.perf_counter() - t))
    return {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95))}


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
    app = load_predictor(args.model, device="cpu", tta=False)  # converts (cached) if there is no twin
    twin = tflite_path(args.model)
    source = twin if twin.is_file() and loaded.metadata.tflite_keras_sha256 == file_sha256(args.model) else None
    source = source or cache_dir() / f"{file_sha256(args.model)}.tflite"
    figures["tflite_mb"] = source.stat().st_size / 2**20  # 8-bit weights (model.litert.convert)
    engines = {
        "litert_2threads": LiteRTModel(source, threads=2).run,
        "litert_1thread": LiteRTModel(source, threads=1).run,
        "tensorflow": make_predictor(loaded.model),
    }
    print(f"the app runs {app.engine} on {app.device}; {figures['params']:,} params, "
          f"{figures['mflops_per_face']:.1f} MFLOP per face, "
          f"{figures['file_mb']:.1f} MB .keras, {figures['tflite_mb']:.1f} MB .tflite")  # fmt: skip
    print(f"{'':18}" + "".join(f"{name:>22}" for name in engines) + f"{'TF / LiteRT-2':>16}")
    for tta in (False, True):
        for batch in (1, 4, 8):
            key = f"batch{batch}{'+flips' if tta else ''}"
            row = {}
            for name, run in engines.items():
                call = (lambda x, run=run: run(np.concatenate([x, x[:, :, ::-1]]))) if tta else run
                row[name] = time_calls(call, batch, args.repeats)
            figures["calls"][key] = row
            ratio = row["tensorflow"]["median_ms"] / row["litert_2threads"]["median_ms"]
            cells = "".join(f"{r['median_ms']:9.2f} (p95 {r['p95_ms']:5.2f})" for r in row.values())
            print(f"{key:18}{cells}{ratio:15.1f}x")
    print("(milliseconds per call: median, p95 in brackets)")
    faces4 = figures["calls"]["batch4+flips" if app.tta else "batch4"]["litert_2threads"]["p95_ms"]
    figures["budget"] = {"faces": 4, "p95_ms": faces4, "budget_ms": BUDGET_MS, "ratio": faces4 / BUDGET_MS}
    print(f"4 faces as the app runs them (LiteRT, 2 threads{', flips' if app.tta else ''}): p95 {faces4:.2f} ms, "
          f"{faces4 / BUDGET_MS:.2f}x the budget of {BUDGET_MS:g} ms")  # fmt: skip
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
