"""The Retrain dialog: check a data set, train in a separate process, compare, switch.

Training runs ``train_emotion.py train ... --progress-jsonl -`` in a ``QProcess`` (the
frozen app's own executable with a ``train`` sub-command), never in the GUI process.
The dialog only reads its JSON events; the model in use is not touched unless the
user presses **Use this model** after a finished run.
"""

from __future__ import annotations

import html
import logging
import time
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, QSettings, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.core.errors import unexpected_error_message
from desktop.core.runs import last_stopped_run, new_run_dir, trainer_command
from desktop.ui.curves import CurvesWidget
from desktop.ui.tasks import LatestTask
from model import events
from model.reports import read_history
from model.rundir import RunDir

log = logging.getLogger(__name__)

START_FROM = [("Fine-tune the current model", None), ("From scratch (vgg)", "vgg"), ("From scratch (seed)", "seed")]


def _check_dataset(path: str) -> dict[str, dict[str, int]]:
    """On the checker thread: faces per class per split, every row checked and none kept (FER2013 takes seconds)."""
    from model.data import DatasetError, count_faces

    try:
        return count_faces(path)
    except OSError as exc:
        raise DatasetError(f"{path}: {exc.strerror or exc}") from None


def format_summary(summary: dict[str, dict[str, int]]) -> str:
    """Faces per class per split as a small HTML table."""
    labels = list(next(iter(summary.values())))
    head = "".join(f"<th>{name}</th>" for name in labels)
    rows = "".join(
        f"<tr><td><b>{split}</b></td>"
        + "".join(f"<td align=right>{c}</td>" for c in counts.values())
        + f"<td align=right><b>{sum(counts.values())}</b></td></tr>"
        for split, counts in summary.items()
    )
    return f"<table cellspacing=4><tr><th></th>{head}<th>total</th></tr>{rows}</table>"


class RetrainDialog(QDialog):
    """Retrain the model; emits :attr:`model_chosen` with the new model's path."""

    model_chosen = Signal(str)

    def __init__(
        self,
        current_model: Path,
        parent: QWidget | None = None,
        runs_root: Path | None = None,
        settings: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Retrain the emotion model")
        self.current_model = Path(current_model)
        self.runs_root = runs_root
        self.settings = settings if settings is not None else QSettings()  # the main window's, where it has one
        self.process: QProcess | None = None
        self.run_dir: Path | None = None
        self.best_model: Path | None = None
        self.valid_path: str | None = None
        self._checking: str | None = None  # the path being checked
        self._check = LatestTask(_check_dataset, "dataset-check", self)
        self._check.done.connect(self._on_check_done)
        self._check.failed.connect(self._on_check_failed)
        self._stdout_buffer = b""
        self._cancelling = False
        self._done_event: events.Done | None = None
        self._error_message: str | None = None
        self._started_at = 0.0
        self._plan = {"epochs": 1, "initial": 0, "steps": 1}
        self._offer = ""  # the result label's offer of a stopped run (offer_stopped_run)
        self._build()
        self._set_state("idle")
        self.offer_stopped_run()
        saved = str(self.settings.value("retrain/data", "") or "")
        if saved:
            self.data_edit.setText(saved)
            self.check_dataset()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.data_edit = QLineEdit(placeholderText="FER2013-style CSV (.csv/.csv.gz) or folder train/<emotion>/*.png")
        self.data_edit.editingFinished.connect(self.check_dataset)
        file_btn = QPushButton("File…", clicked=self._browse_file)
        folder_btn = QPushButton("Folder…", clicked=self._browse_folder)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_edit, 1)
        data_row.addWidget(file_btn)
        data_row.addWidget(folder_btn)
        self.summary_label = QLabel("Choose a data set.", wordWrap=True)
        self.detect = QCheckBox("Photos, not face crops: train on the face found in each, as the app finds it")
        self.detect.setChecked(self.settings.value("retrain/detect", False, type=bool))

        self.epochs = QSpinBox(minimum=1, maximum=1000, value=int(self.settings.value("retrain/epochs", 3)))
        self.batch_size = QSpinBox(minimum=4, maximum=4096, value=int(self.settings.value("retrain/batch", 64)))
        self.start_from = QComboBox()
        for text, _arch in START_FROM:
            self.start_from.addItem(text)
        self.lr = QDoubleSpinBox(decimals=5, minimum=0.0, maximum=1.0, singleStep=0.001, value=0.0)
        self.lr.setSpecialValueText("automatic")
        self.augment = QCheckBox("Augment faces on the fly (flip, shift, zoom, rotation)", checked=True)
        advanced = QGroupBox("Advanced")
        adv = QFormLayout(advanced)
        adv.addRow("Learning rate", self.lr)
        adv.addRow(self.augment)

        form = QFormLayout()
        form.addRow("Data set", data_row)
        form.addRow("", self.summary_label)
        form.addRow("", self.detect)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Start from", self.start_from)

        self.epoch_bar = QProgressBar(format="epoch: %p%")
        self.run_bar = QProgressBar(format="run: %p%")
        self.time_label = QLabel("")
        self.curves = CurvesWidget()
        self.log_view = QPlainTextEdit(readOnly=True, maximumBlockCount=2000)
        self.log_view.setMinimumHeight(90)
        self.result_label = QLabel("", wordWrap=True)

        self.start_btn = QPushButton("Start", clicked=self.start)
        self.cancel_btn = QPushButton("Cancel training", clicked=self.cancel)
        self.resume_btn = QPushButton("Resume", clicked=self.resume)
        self.use_btn = QPushButton("Use this model", clicked=self._use_model)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        for b in (self.start_btn, self.cancel_btn, self.resume_btn, self.use_btn):
            buttons.addButton(b, QDialogButtonBox.ButtonRole.ActionRole)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(advanced)
        layout.addWidget(self.epoch_bar)
        layout.addWidget(self.run_bar)
        layout.addWidget(self.time_label)
        layout.addWidget(self.curves, 2)
        layout.addWidget(self.log_view, 1)
        layout.addWidget(self.result_label)
        layout.addWidget(buttons)
        self.resize(760, 720)

    def _set_state(self, state: str) -> None:
        self.state = state
        running = state == "running"
        self.start_btn.setEnabled(state in ("valid", "finished", "failed", "cancelled") and self.valid_path is not None)
        self.cancel_btn.setEnabled(running)
        self.resume_btn.setEnabled(not running and self.run_dir is not None and RunDir(self.run_dir).stopped)
        self.use_btn.setEnabled(state == "finished" and self.best_model is not None and self.best_model.exists())
        for w in (self.data_edit, self.detect, self.epochs, self.batch_size, self.start_from, self.lr, self.augment):
            w.setEnabled(not running)

    def offer_stopped_run(self) -> None:
        """Offer the newest run that stopped before its end (cancelled, failed, or cut off by closing or killing
        the app) to Resume, so no finished epoch is lost to a restart. Not while a run trains or its result shows,
        nor over a run of this dialog that can itself be resumed."""
        if self.state in ("running", "finished") or (self.run_dir is not None and RunDir(self.run_dir).stopped):
            return
        said = self.result_label.text().replace(self._offer, "").removesuffix("<br>")  # why the last run ended
        stopped = last_stopped_run(self.runs_root)
        self._offer = ""
        if stopped is not None:
            self.run_dir = stopped.path
            self._offer = (
                f"{html.escape(stopped.describe())}. <b>Resume</b> continues it, with its own data and settings; "
                "<b>Start</b> begins a new run with the ones above."
            )
        self.result_label.setText(f"{said}<br>{self._offer}" if said and self._offer else said or self._offer)
        self._set_state(self.state)

    # ------------------------------------------------------------------ data set check
    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "FER2013-style CSV", self.data_edit.text(), "CSV (*.csv *.csv.gz *.gz);;All files (*)"
        )
        if path:
            self.data_edit.setText(path)
            self.check_dataset()

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Image folder (train/<emotion>/…)", self.data_edit.text())
        if path:
            self.data_edit.setText(path)
            self.check_dataset()

    def check_dataset(self) -> None:
        """Validate the data set in a worker thread; nothing can start until it passes."""
        path = self.data_edit.text().strip()
        if not path or self._checking == path or self.state == "running":
            return
        if path == self.valid_path:  # editingFinished fires again when the field loses focus (to Start)
            return
        self.valid_path = None
        self.summary_label.setText(f"Checking {Path(path).name}…")
        self._set_state("checking")
        self._checking = path
        self._check.submit(path, path)

    def _on_check_done(self, path: str, summary: dict) -> None:
        if path != self.data_edit.text().strip():
            return  # the user has picked another data set meanwhile
        self._checking = None
        self.valid_path = path
        self.settings.setValue("retrain/data", path)
        self.summary_label.setText(format_summary(summary))
        # Resume may have started a run while the check ran; it may even have ended: keep its state
        self._set_state("valid" if self.state in ("idle", "checking", "valid", "invalid") else self.state)

    def _on_check_failed(self, path: str, exc: Exception) -> None:
        if path != self.data_edit.text().strip():
            return
        from model.data import DatasetError

        if isinstance(exc, DatasetError):
            message = str(exc)
        else:  # a bug: the traceback goes to the log
            log.error("checking the data set %s failed", path, exc_info=exc)
            message = unexpected_error_message(exc)
        self._checking = None
        self.summary_label.setText(f"<span style='color:#c0392b'><b>Cannot use this data set:</b> {message}</span>")
        self._set_state("invalid" if self.state in ("idle", "checking", "valid", "invalid") else self.state)

    # ------------------------------------------------------------------ the trainer process
    def training_arguments(self) -> list[str]:
        arch = START_FROM[self.start_from.currentIndex()][1]
        args = [
            "train",
            "--data",
            str(self.valid_path),
            "--out",
            str(self.run_dir),
            "--epochs",
            str(self.epochs.value()),
            "--batch-size",
            str(self.batch_size.value()),
        ]
        args += ["--arch", arch] if arch else ["--init", str(self.current_model)]
        if self.lr.value() > 0:
            args += ["--lr", f"{self.lr.value():g}"]
        if not self.augment.isChecked():
            args.append("--no-augment")
        if self.detect.isChecked():
            args.append("--detect")
        return [*args, "--compare", str(self.current_model), "--progress-jsonl", "-"]

    def start(self) -> None:
        if self.valid_path is None or self.state == "running":
            return
        self.settings.setValue("retrain/epochs", self.epochs.value())
        self.settings.setValue("retrain/batch", self.batch_size.value())
        self.settings.setValue("retrain/detect", self.detect.isChecked())
        self.run_dir = new_run_dir(self.runs_root)
        self.curves.set_history([])
        self.log_view.clear()
        self._launch(self.training_arguments())

    def resume(self) -> None:
        if self.run_dir is None or self.state == "running":
            return
        self._launch(
            ["train", "--resume", str(self.run_dir), "--compare", str(self.current_model), "--progress-jsonl", "-"]
        )

    def _launch(self, args: list[str]) -> None:
        program, arguments = trainer_command(args)
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_process_error)
        self.process = process
        self._stdout_buffer = b""
        self._cancelling = False
        self._done_event = None
        self._error_message = None
        self.best_model = None
        self.result_label.clear()
        self._started_at = time.monotonic()
        self._append_log(f"$ {Path(program).name} {' '.join(arguments)}")
        self._set_state("running")
        process.start(program, arguments)

    def cancel(self) -> None:
        """Stop the trainer; its last complete-epoch checkpoint stays and Resume continues it."""
        if self.process is None or self.process.state() == QProcess.ProcessState.NotRunning:
            return
        self._cancelling = True
        self._append_log("Cancelling…")
        self.process.terminate()
        # The process is the timer's context: if it is deleted first, the timer is cancelled with it.
        QTimer.singleShot(5000, self.process, self.process.kill)

    def _read_stdout(self) -> None:
        self.feed_stdout(bytes(self.process.readAllStandardOutput()))

    def feed_stdout(self, data: bytes) -> None:
        """Take the trainer's stdout as it comes (lines may arrive in pieces): events, and any other line as is."""
        self._stdout_buffer += data
        *lines, self._stdout_buffer = self._stdout_buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                event = events.from_json(line)
            except (ValueError, TypeError):  # not an event: a line the trainer printed
                self._append_log(line)
                continue
            if event is not None:  # None: a kind of event this app does not know (a newer trainer)
                self.handle_event(event)

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
        for line in text.splitlines():  # the trainer keeps TensorFlow's start-up chatter off stderr (model.chatter)
            if line.strip():
                self._append_log(line.rstrip())

    def handle_event(self, event: events.Event) -> None:
        match event:
            case events.Start():
                self._plan = {"epochs": event.epochs, "initial": event.initial_epoch, "steps": event.steps}
                self.run_dir = Path(event.run_dir)
                if event.initial_epoch:
                    self.curves.set_history(read_history(RunDir(self.run_dir).history))
                self._append_log(
                    f"Training on {event.device}: {event.train_size} faces, validation {event.val_size} "
                    f"({event.validation}), epochs {event.initial_epoch + 1}–{event.epochs}"
                )
            case events.Batch():
                self._progress(event.epoch, event.batch)
            case events.Epoch():
                self.curves.add_epoch(event.history_row())
                self._progress(event.epoch, self._plan["steps"])
                self._append_log(
                    f"epoch {event.epoch}/{event.epochs}: loss {event.loss:.3f}, accuracy {event.accuracy:.1%}, "
                    f"validation {event.val_accuracy:.1%}"
                )
            case events.AverageBegin():
                first, last = event.epochs
                self._append_log(f"Averaging the weights of epochs {first}–{last}…")
            case events.Average():
                first, last = event.epochs
                verdict = "kept as the run's best model" if event.best else "not better than the best epoch"
                self._append_log(f"Average of epochs {first}–{last}: validation {event.val_accuracy:.1%} ({verdict})")
            case events.Done():
                self._done_event = event
            case events.Error():
                self._error_message = event.message or "unknown error"
                self._append_log(f"error: {self._error_message}")

    def _progress(self, epoch: int, batch: int) -> None:
        plan = self._plan
        self.epoch_bar.setValue(round(100 * batch / plan["steps"]))
        self.epoch_bar.setFormat(f"epoch {epoch}/{plan['epochs']}: %p%")
        total = (plan["epochs"] - plan["initial"]) * plan["steps"]
        done = (epoch - 1 - plan["initial"]) * plan["steps"] + batch
        frac = min(max(done / max(total, 1), 0.0), 1.0)
        self.run_bar.setValue(round(100 * frac))
        elapsed = time.monotonic() - self._started_at
        eta = elapsed / frac * (1 - frac) if frac > 0 else float("nan")
        self.time_label.setText(f"elapsed {_clock(elapsed)} · remaining ≈ {_clock(eta)}")

    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._error_message = f"the trainer could not start ({self.process.errorString()})"
            self._append_log(f"error: {self._error_message}")
            self._finish("failed")

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        if self._cancelling:
            epoch = RunDir(self.run_dir).epochs_done() if self.run_dir else 0
            self.result_label.setText(
                f"Cancelled. The run keeps {epoch} finished epoch(s); <b>Resume</b> continues it. "
                "The model in use is unchanged."
                if epoch
                else "Cancelled before its first epoch ended: nothing to resume. The model in use is unchanged."
            )
            self._finish("cancelled")
        elif exit_status == QProcess.ExitStatus.NormalExit and exit_code == 0 and self._done_event:
            self._show_result(self._done_event)
            self._finish("finished")
        else:
            tail = "\n".join(self.log_view.toPlainText().splitlines()[-8:])
            how = "crashed" if exit_status == QProcess.ExitStatus.CrashExit else f"stopped with exit code {exit_code}"
            reason = self._error_message or f"the trainer {how}"
            self.result_label.setText(
                f"<span style='color:#c0392b'><b>Training failed:</b> {reason}.</span> The model in use is unchanged."
            )
            self._append_log(f"--- the trainer {how}; last lines above ---")
            log.warning("retrain failed: %s\n%s", reason, tail)
            self._finish("failed")

    def _finish(self, state: str) -> None:
        if self.process is not None:
            self.process.deleteLater()  # one QProcess per run, not one more kept for every run
        self.process = None
        self._set_state(state)
        self.offer_stopped_run()  # a run that failed before its first epoch leaves an older one to resume

    def _show_result(self, event: events.Done) -> None:
        self.best_model = Path(event.best_model)
        new, old = event.accuracy, event.compare_accuracy
        text = f"New model: <b>{new:.1%}</b> validation accuracy"
        if old is not None:
            verdict = "better" if new > old else "not better"
            text += f" — current model: {old:.1%} on the same faces ({verdict})."
        self.result_label.setText(text)

    def _use_model(self) -> None:
        if self.best_model is not None:
            self.model_chosen.emit(str(self.best_model))
            self.result_label.setText(self.result_label.text() + " <b>Now in use.</b>")
            self.use_btn.setEnabled(False)

    def _append_log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def shutdown(self) -> None:
        """The app is closing: a data-set check still parsing reports to nobody (its daemon thread ends with it)."""
        self._check.close()

    def closeEvent(self, event) -> None:
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            answer = QMessageBox.question(
                self, "Training is running", "Stop training? The last finished epoch is kept and can be resumed."
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.cancel()
            self.process.waitForFinished(6000)
        super().closeEvent(event)


def _clock(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN before the first batch
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
