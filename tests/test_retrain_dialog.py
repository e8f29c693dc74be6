"""The Retrain dialog with a real trainer subprocess on tiny data the tests write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from desktop_support import stop_trainer
from PySide6.QtCore import QSettings, Qt

from desktop.core.runs import finished_runs, list_models, resumable_runs
from desktop.ui.retrain_dialog import RetrainDialog
from model.checkpoint import ModelMetadata, save_model
from model.network import build_model

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"


@pytest.fixture
def current_model(tmp_path) -> Path:
    """A small real model standing in for the one in use."""
    path = tmp_path / "current" / "model.keras"
    save_model(build_model("seed"), path, ModelMetadata(arch="seed"))
    return path


def make_dialog(qtbot, model: Path, runs: Path, data: Path, settings=None) -> RetrainDialog:
    dialog = RetrainDialog(model, runs_root=runs, settings=settings)
    qtbot.addWidget(dialog, before_close_func=stop_trainer)
    dialog.data_edit.setText(str(data))
    dialog.check_dataset()
    qtbot.waitUntil(lambda: dialog.state in ("valid", "invalid"), timeout=30_000)
    return dialog


def test_malformed_dataset_shows_error_and_starts_nothing(qtbot, tmp_path, current_model):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n3," + " ".join(["1"] * 100) + ",Training\n")
    dialog = make_dialog(qtbot, current_model, tmp_path / "runs", bad)
    assert dialog.state == "invalid"
    assert "line 2: expected 2304 pixel values" in dialog.summary_label.text()
    assert not dialog.start_btn.isEnabled()
    qtbot.mouseClick(dialog.start_btn, Qt.MouseButton.LeftButton)
    dialog.start()  # even called directly, nothing starts
    assert dialog.process is None and not (tmp_path / "runs").exists()


def test_photos_ask_the_trainer_to_find_each_face_and_are_remembered(qtbot, tmp_path, current_model, tiny_csv):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    dialog = make_dialog(qtbot, current_model, tmp_path / "runs", tiny_csv, settings)
    assert not dialog.detect.isChecked() and "--detect" not in dialog.training_arguments()
    dialog.detect.setChecked(True)
    assert dialog.training_arguments().count("--detect") == 1
    dialog.start()  # the test's made-up 48x48 faces are no faces to Haar: the trainer says so and the run fails
    assert not dialog.detect.isEnabled()  # while a run trains, its data settings are fixed
    qtbot.waitUntil(lambda: dialog.state != "running", timeout=120_000)
    assert dialog.state == "failed", dialog.log_view.toPlainText()[-2000:]
    assert "no face found" in dialog.log_view.toPlainText()
    assert settings.value("retrain/detect", type=bool) is True  # in the store it was given (the main window's)
    again = make_dialog(qtbot, current_model, tmp_path / "runs", tiny_csv, settings)  # the next time it opens
    assert again.detect.isChecked() and again.training_arguments().count("--detect") == 1


def test_retrain_runs_in_subprocess_and_offers_the_new_model(qtbot, tmp_path, current_model, tiny_csv):
    runs = tmp_path / "runs"
    dialog = make_dialog(qtbot, current_model, runs, tiny_csv)
    assert dialog.state == "valid" and "PublicTest" in dialog.summary_label.text()
    dialog.epochs.setValue(2)
    dialog.batch_size.setValue(16)
    before = current_model.read_bytes()
    qtbot.mouseClick(dialog.start_btn, Qt.MouseButton.LeftButton)
    assert dialog.process is not None and dialog.state == "running"
    assert dialog.process.processId() > 0
    qtbot.waitUntil(lambda: dialog.state != "running", timeout=180_000)
    assert dialog.state == "finished", dialog.log_view.toPlainText()[-2000:]
    assert [int(h["epoch"]) for h in dialog.curves.history] == [1, 2]  # one curve point per epoch event
    assert dialog.run_bar.value() == 100 and dialog.epoch_bar.value() == 100
    assert "current model:" in dialog.result_label.text()
    log_lines = dialog.log_view.toPlainText().lower().splitlines()
    for words in ("averaging the weights of epochs", "average of epochs", "epoch 2/2"):  # each said once
        assert sum(words in line for line in log_lines) == 1, (words, log_lines)
    assert current_model.read_bytes() == before  # training never touches the model in use

    entries = finished_runs(runs)
    assert len(entries) == 1 and entries[0].path == dialog.best_model and entries[0].accuracy is not None
    assert [e.shipped for e in list_models(runs)] == [True, False]
    with qtbot.waitSignal(dialog.model_chosen) as chosen:
        qtbot.mouseClick(dialog.use_btn, Qt.MouseButton.LeftButton)
    assert chosen.args == [str(dialog.best_model)]
    args = json.loads((dialog.run_dir / "config.json").read_text())
    assert args["init"] == str(current_model)  # fine-tune is the default


def test_cancel_then_resume_after_the_app_restarts(qtbot, tmp_path, current_model, medium_csv):
    runs = tmp_path / "runs"
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    dialog = make_dialog(qtbot, current_model, runs, medium_csv, settings)
    dialog.epochs.setValue(4)
    dialog.batch_size.setValue(8)
    dialog.start_from.setCurrentIndex(2)  # from scratch, seed architecture
    before = current_model.read_bytes()
    dialog.start()
    qtbot.waitUntil(lambda: len(dialog.curves.history) >= 1, timeout=180_000)
    assert (dialog.run_dir / "state.json").is_file() and resumable_runs(runs) == []  # its trainer holds it
    dialog.cancel()
    qtbot.waitUntil(lambda: dialog.state != "running", timeout=30_000)
    assert dialog.state == "cancelled", dialog.log_view.toPlainText()[-2000:]
    assert "Resume" in dialog.result_label.text() and dialog.resume_btn.isEnabled()
    state = json.loads((dialog.run_dir / "state.json").read_text())
    assert 1 <= state["epoch"] < 4
    assert resumable_runs(runs) == [dialog.run_dir] and finished_runs(runs) == []
    assert current_model.read_bytes() == before
    dialog.close()

    # The app closed and opened again: its Retrain dialog offers the stopped run, and Resume finishes it,
    # clicked before the remembered data set's check has come back (the check must not end the "running" state).
    dialog = RetrainDialog(current_model, runs_root=runs, settings=settings)
    qtbot.addWidget(dialog, before_close_func=stop_trainer)
    assert dialog.state == "checking" and dialog.resume_btn.isEnabled() and dialog.run_dir == resumable_runs(runs)[0]
    assert f"stopped after {state['epoch']} of 4 epoch(s) on {medium_csv.name}" in dialog.result_label.text()
    dialog.resume()  # as the button does, with no events processed between: the check is still out
    assert dialog.state == "running" and dialog._checking is not None
    qtbot.waitUntil(lambda: dialog._checking is None, timeout=30_000)
    assert dialog.state == "running" and dialog.cancel_btn.isEnabled()
    assert not dialog.resume_btn.isEnabled() and not dialog.start_btn.isEnabled()
    qtbot.waitUntil(lambda: dialog.state != "running", timeout=180_000)
    assert dialog.state == "finished", dialog.log_view.toPlainText()[-2000:]
    assert json.loads((dialog.run_dir / "state.json").read_text())["epoch"] == 4
    assert [int(h["epoch"]) for h in dialog.curves.history] == [1, 2, 3, 4]
    assert not dialog.resume_btn.isEnabled()  # finished: nothing left to resume
    assert not make_dialog(qtbot, current_model, runs, medium_csv, settings).resume_btn.isEnabled()


def test_trainer_crash_is_reported_with_its_log(qtbot, tmp_path, current_model, tiny_csv):
    dialog = make_dialog(qtbot, current_model, tmp_path / "runs", tiny_csv)
    tiny_csv.unlink()  # the data vanishes after the check: the trainer fails on its own
    dialog.start()
    qtbot.waitUntil(lambda: dialog.state != "running", timeout=60_000)
    assert dialog.state == "failed"
    assert "Training failed" in dialog.result_label.text() and "no such file" in dialog.result_label.text()
    assert "error:" in dialog.log_view.toPlainText()


def test_a_stream_recorded_from_the_trainer_before_the_event_types_still_drives_the_dialog(
    qtbot, tmp_path, current_model
):
    """tests/data holds a real --progress-jsonl stream of a 10-epoch run (2026-11-27, before model.events),
    with most batch lines left out: the dialog must read it as it read it then."""
    stream = (DATA / "trainer_stream_2026-11-27.jsonl").read_text().replace("RUN_DIR", str(tmp_path / "run"))
    dialog = RetrainDialog(current_model, runs_root=tmp_path)
    qtbot.addWidget(dialog)
    raw = (stream + "a line that is not an event\n").encode()
    for start in range(0, len(raw), 1000):  # in pieces that cut lines in two, as a pipe delivers them
        dialog.feed_stdout(raw[start : start + 1000])
    epochs = [json.loads(line) for line in stream.splitlines() if '"event": "epoch"' in line]
    assert [h["epoch"] for h in dialog.curves.history] == list(range(1, 11))
    assert [h["val_accuracy"] for h in dialog.curves.history] == [e["val_accuracy"] for e in epochs]
    assert dialog.run_bar.value() == 100 and dialog.run_dir == tmp_path / "run"
    log_text = dialog.log_view.toPlainText()
    assert "Training on CPU: 28558 faces, validation 3579 (PublicTest), epochs 1–10" in log_text
    assert log_text.count("Averaging the weights of epochs 4–10") == 1
    assert "Average of epochs 4–10: validation 66.8% (kept as the run's best model)" in log_text
    assert log_text.splitlines()[-1] == "a line that is not an event"
    assert dialog._done_event is not None and dialog._done_event.best_model == str(tmp_path / "run" / "best.keras")


def test_the_offer_of_a_stopped_run_follows_the_runs_folder(qtbot, tmp_path, current_model):
    """The dialog offers the newest stopped run; offered again (Models ▸ Retrain…), it replaces its offer instead
    of adding one, and takes it back when no run is left to resume."""
    import os

    runs = tmp_path / "runs"
    for i, name in enumerate(("older", "newer")):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.json").write_text(json.dumps({"epochs": 5, "data": f"/data/<{name}>.csv"}))
        (runs / name / "state.json").write_text(json.dumps({"epoch": i + 1}))
        os.utime(runs / name, (1_000_000 + i, 1_000_000 + i))
    dialog = RetrainDialog(current_model, runs_root=runs)
    qtbot.addWidget(dialog)
    assert dialog.run_dir == runs / "newer" and dialog.resume_btn.isEnabled()
    assert "newer: stopped after 2 of 5 epoch(s) on &lt;newer&gt;.csv" in dialog.result_label.text()
    (runs / "newer" / "metrics.json").write_text("{}")  # finished meanwhile, from the command line
    dialog.offer_stopped_run()
    text = dialog.result_label.text()
    assert dialog.run_dir == runs / "older" and "older: stopped after 1 of 5" in text
    assert "newer" not in text and text.count("Resume</b> continues it") == 1
    (runs / "older" / "state.json").unlink()
    dialog.offer_stopped_run()
    assert dialog.result_label.text() == "" and not dialog.resume_btn.isEnabled()
