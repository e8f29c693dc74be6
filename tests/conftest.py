"""Shared fixtures: quiet TensorFlow, a private user-data folder, tiny data sets written by the tests."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import tempfile
from pathlib import Path

# QSettings on Linux live under XDG_CONFIG_HOME: keep the tests' settings out of the user's.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="emotion-lens-test-config-")

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FER2013 = SHARED / "data" / "fer2013" / "fer2013.csv.gz"
MEDIA = SHARED / "media"


@pytest.fixture(autouse=True)
def _private_user_data(tmp_path_factory, monkeypatch):
    """Every test gets its own user data dir, so nothing touches the real one."""
    monkeypatch.setenv("EMOTION_LENS_DATA_DIR", str(tmp_path_factory.mktemp("userdata")))


def synthetic_faces(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 48x48 faces: each class is a distinct bright blob position plus noise."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label in range(7):
        cy, cx = 8 + (label // 3) * 14, 8 + (label % 3) * 14
        for _ in range(n_per_class):
            img = rng.integers(0, 60, (48, 48)).astype(np.int32)
            img[cy : cy + 12, cx : cx + 12] += 180
            xs.append(np.clip(img, 0, 255).astype(np.uint8))
            ys.append(label)
    return np.stack(xs), np.asarray(ys)


def write_fer_csv(path: Path, x: np.ndarray, y: np.ndarray, usage: list[str] | None = None) -> Path:
    """Write faces in the Kaggle fer2013.csv layout (``emotion,pixels[,Usage]``)."""
    lines = ["emotion,pixels" + (",Usage" if usage else "")]
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        row = f"{label},{' '.join(map(str, img.reshape(-1)))}"
        lines.append(row + (f",{usage[i]}" if usage else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tiny_csv(folder: Path) -> Path:
    """56 training and 28 PublicTest synthetic faces, all 7 classes, as ``folder/tiny.csv``."""
    x_tr, y_tr = synthetic_faces(8, seed=1)
    x_va, y_va = synthetic_faces(4, seed=2)
    x = np.concatenate([x_tr, x_va])
    y = np.concatenate([y_tr, y_va])
    usage = ["Training"] * len(y_tr) + ["PublicTest"] * len(y_va)
    return write_fer_csv(folder / "tiny.csv", x, y, usage)


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    return write_tiny_csv(tmp_path)


@pytest.fixture
def medium_csv(tmp_path) -> Path:
    """420 training faces: at batch 8 an epoch has 53 steps, long enough to cancel inside one."""
    x_tr, y_tr = synthetic_faces(60, seed=1)
    x_va, y_va = synthetic_faces(4, seed=2)
    usage = ["Training"] * len(y_tr) + ["PublicTest"] * len(y_va)
    return write_fer_csv(tmp_path / "medium.csv", np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va]), usage)
