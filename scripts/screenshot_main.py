"""Save the README's screenshots of the main window, from the real window (offscreen Qt).

    .venv/bin/python -m scripts.screenshot_main [--out assets/screenshots]

- ``main_window.png``: the demo as it starts;
- ``explain.png``: the demo (the bundled public-domain photo) with Explain on;
- ``crowd.png``: a "crowd" of six copies of that face (some mirrored), so the panel shows compact rows and
  one full card. It is made from the same photo because it is the only face we may ship.
Each is ``python -m desktop --source … --exit-after-frames N --screenshot FILE`` with fresh settings.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_crowd(path: Path) -> Path:
    """Six copies of the photo's face: mirrored, darker, paler, smaller, tilted."""
    face = cv2.imread(str(ROOT / "assets" / "astronaut.png"))[30:230, 120:320]
    tilted = cv2.warpAffine(
        face, cv2.getRotationMatrix2D((100, 100), 10, 1.0), (200, 200), borderMode=cv2.BORDER_REFLECT
    )
    smaller = cv2.copyMakeBorder(cv2.resize(face, (160, 160)), 20, 20, 20, 20, cv2.BORDER_REPLICATE)
    tiles = [face, face[:, ::-1], cv2.convertScaleAbs(face, alpha=0.6), cv2.convertScaleAbs(face, alpha=0.6, beta=90),
             smaller, tilted]  # fmt: skip
    cv2.imwrite(str(path), np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])]))
    return path


def shoot(source: str, frames: int, out: Path, *extra: str) -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": home, "EMOTION_LENS_DATA_DIR": home}
        command = [sys.executable, "-m", "desktop", "--source", source, "--exit-after-frames", str(frames)]
        subprocess.run([*command, "--screenshot", str(out), *extra], cwd=ROOT, env=env, check=True, timeout=300)
    print(f"wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shoot("demo", 45, args.out / "main_window.png")
    shoot("demo", 60, args.out / "explain.png", "--explain")
    with tempfile.TemporaryDirectory() as tmp:
        shoot(str(write_crowd(Path(tmp) / "crowd.png")), 1, args.out / "crowd.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
