"""Starting the GUI: QApplication, Qt's messages into logging, an excepthook that logs and shows a dialog."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import QSettings, QThread, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop.core.classifier import EmotionClassifier
from desktop.ui.main_window import MainWindow, remembered_model
from model.userdata import APP_NAME

log = logging.getLogger(__name__)
_qt_log = logging.getLogger("qt")
_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


def _qt_message(mode: QtMsgType, context, message: str) -> None:
    level = _QT_LEVELS.get(mode, logging.WARNING)
    if "propagateSizeHints" in message:  # the offscreen platform's harmless complaint
        level = logging.DEBUG
    _qt_log.log(level, "%s", message)


def install_excepthook(log_file: Path | None) -> None:
    """Log any unhandled exception with its traceback and tell the user in a dialog, not a console.

    The dialog is shown *after* the handler that raised has returned, and without a nested event
    loop (``show()``, not ``exec()``): a modal dialog opened inside, say, a paint handler runs
    deferred deletions of widgets that are still painting. Later errors while one is open are
    logged and counted in its text, never stacked.
    """
    dialog: QMessageBox | None = None
    pending: list[str] = []

    def show() -> None:
        nonlocal dialog
        if not pending:
            return
        where = f"\n\nDetails were written to {log_file}" if log_file else ""
        more = f"\n\n({len(pending) - 1} more errors since, in the log)" if len(pending) > 1 else ""
        text = f"Something went wrong: {pending[0]}{more}{where}"
        if dialog is None:
            dialog = QMessageBox(QMessageBox.Icon.Critical, "Emotion Lens", text)
            dialog.setObjectName("error-dialog")
            dialog.finished.connect(forget)
            dialog.show()
        else:
            dialog.setText(text)

    def forget() -> None:
        nonlocal dialog
        if dialog is not None:
            dialog.deleteLater()
        dialog = None
        pending.clear()

    def hook(exc_type, exc, tb) -> None:
        log.critical("unhandled exception", exc_info=(exc_type, exc, tb))
        app = QApplication.instance()
        if app is None:
            return
        pending.append(f"{exc_type.__name__}: {exc}")
        if QThread.currentThread() is app.thread():
            QTimer.singleShot(0, show)  # after the handler that raised has returned

    sys.excepthook = hook


def run_gui(args: argparse.Namespace, log_file: Path | None) -> int:
    if args.screenshot is not None and args.exit_after_frames is None:
        raise SystemExit("error: --screenshot needs --exit-after-frames N")
    if args.bench_seconds is not None and (args.exit_after_frames is not None or args.bench_seconds <= 0):
        raise SystemExit("error: --bench-seconds takes a positive number and no --exit-after-frames")
    display_vars = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    if sys.platform.startswith("linux") and not any(os.environ.get(v) for v in display_vars):
        print(
            "error: no display (set DISPLAY, or QT_QPA_PLATFORM=offscreen; 'analyze' works without one)",
            file=sys.stderr,
        )
        return 1
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    qInstallMessageHandler(_qt_message)
    install_excepthook(log_file)
    settings = QSettings()
    # --model wins for this session; otherwise the model chosen last time (Models menu, Retrain).
    # A remembered file that has gone or broken falls back to the shipped model with a banner.
    classifier = EmotionClassifier(args.model or remembered_model(settings), device=args.device, fallback=True)
    window = MainWindow(classifier, source=args.source, settings=settings)
    window.set_explain(args.explain)
    if args.exit_after_frames is not None:
        window.exit_after(args.exit_after_frames, args.screenshot)
    if args.bench_seconds is not None:
        window.bench(args.bench_seconds)
    window.show()
    code = app.exec()
    if window.bench_result is not None:
        r = window.bench_result
        print(
            f"{r['displayed_fps']:.1f} fps shown, overlays {r['overlay_hz']:.1f} Hz, capture->paint "
            f"p50 {r['capture_to_paint_p50_ms']:.0f} ms / p95 {r['capture_to_paint_p95_ms']:.0f} ms, "
            f"longest UI stall {r['max_ui_stall_ms']:.0f} ms"
        )
        print(json.dumps(r), flush=True)
    return code
