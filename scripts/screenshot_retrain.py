"""Save a screenshot of the Retrain dialog in the middle of a real run (for the README).

    xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python -m scripts.screenshot_retrain \\
        --data ../shared/data/fer2013/fer2013.csv.gz --out assets/screenshots/retrain_dialog.png

Takes the first ``--train`` Training rows and ``--val`` PublicTest rows of a FER2013-style CSV
into a temporary CSV, fine-tunes the shipped model on them in the dialog's real trainer
subprocess, grabs the dialog once ``--epochs-shown`` epochs are plotted, cancels the run and
quits. Runs and settings go to a temporary folder, never the user's.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def subset_csv(source: Path, out: Path, train: int, val: int) -> Path:
    wanted = {"Training": train, "PublicTest": val}
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", newline="") as fh, out.open("w", newline="") as dst:
        reader = csv.DictReader(fh)
        writer = csv.DictWriter(dst, fieldnames=["emotion", "pixels", "Usage"])
        writer.writeheader()
        for row in reader:
            if wanted.get(row["Usage"], 0) > 0:
                wanted[row["Usage"]] -= 1
                writer.writerow({k: row[k] for k in ("emotion", "pixels", "Usage")})
            if not any(wanted.values()):
                break
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="FER2013-style CSV (.csv or .csv.gz)")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "screenshots" / "retrain_dialog.png")
    parser.add_argument("--train", type=int, default=1200, help="Training rows to use (default 1200)")
    parser.add_argument("--val", type=int, default=300, help="PublicTest rows to use (default 300)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs to ask for (default 8)")
    parser.add_argument("--epochs-shown", type=int, default=4, help="grab once this many are plotted (default 4)")
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="emotion-lens-shot-"))
    os.environ["EMOTION_LENS_DATA_DIR"] = str(tmp / "userdata")
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.ui.retrain_dialog import RetrainDialog
    from model.checkpoint import SHIPPED_MODEL

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    app = QApplication(sys.argv[:1])
    app.setOrganizationName("EmotionLensScreenshot")
    app.setApplicationName("EmotionLensScreenshot")

    data = subset_csv(args.data, tmp / f"fer2013-first-{args.train}.csv", args.train, args.val)
    dialog = RetrainDialog(SHIPPED_MODEL, runs_root=tmp / "runs")
    dialog.data_edit.setText(str(data))
    dialog.epochs.setValue(args.epochs)
    dialog.batch_size.setValue(64)
    dialog.show()
    dialog.check_dataset()
    result = {"code": 1}

    def poll() -> None:
        if dialog.state == "valid":
            dialog.start()
        elif dialog.state == "running" and len(dialog.curves.history) >= args.epochs_shown and result["code"]:
            shown = len(dialog.curves.history)
            mid_epoch = dialog.epoch_bar.format().startswith(f"epoch {shown + 1}/")
            if mid_epoch and 30 <= dialog.epoch_bar.value() <= 80:  # both bars part-way
                args.out.parent.mkdir(parents=True, exist_ok=True)
                result["code"] = 0 if dialog.grab().save(str(args.out)) else 1
                print(f"saved {args.out}" if result["code"] == 0 else f"cannot write {args.out}")
                dialog.cancel()
        elif dialog.state in ("invalid", "failed", "finished", "cancelled"):
            if result["code"]:
                print(f"no screenshot: the dialog ended {dialog.state}\n{dialog.log_view.toPlainText()[-1500:]}")
            app.exit(result["code"])

    timer = QTimer(interval=200, timeout=poll)
    timer.start()
    QTimer.singleShot(round(args.timeout * 1000), lambda: (dialog.cancel(), app.exit(1)))
    code = app.exec()
    if dialog.process is not None:
        dialog.process.waitForFinished(6000)
    return code


if __name__ == "__main__":
    sys.exit(main())
