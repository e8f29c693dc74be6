"""Retrain in the real main window: train in a real subprocess, switch models in the running pipeline, remember.

Every window here starts with the real model, so TensorFlow is loaded before playback: a first
TensorFlow import in the worker in the middle of playback crashed under pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from desktop_support import REPO, stop_trainer
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QToolBar

from desktop.core.classifier import EmotionClassifier
from desktop.core.runs import finished_runs
from desktop.core.sources import VideoFileSource
from desktop.ui.main_window import MODEL_KEY, MainWindow, remembered_model
from model.checkpoint import SHIPPED_MODEL, ModelMetadata, save_model
from model.network import build_model
from model.preprocess import faces_to_batch

pytest_plugins = ["conftest_desktop"]
pytestmark = pytest.mark.slow

FRAME = 20  # the frame compared before and after a switch


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def make_window(qtbot, classifier, source, settings, runs=None) -> MainWindow:
    window = MainWindow(classifier, source=str(source), settings=settings, runs_root=runs)
    qtbot.addWidget(window, before_close_func=lambda w: stop_trainer(w.retrain_dialog))
    window.show()
    qtbot.waitUntil(lambda: window.last is not None and window.last.processed >= 2, timeout=30_000)
    return window


def model_entries(window: MainWindow) -> list[tuple[str, bool]]:
    """(text, checked) of the Models menu's model entries, rebuilt as when the user opens it."""
    window.models_menu.aboutToShow.emit()
    return [(a.text(), a.isChecked()) for a in window.models_menu.actions() if a.isCheckable()]


def probs_at(qtbot, window: MainWindow, index: int = FRAME) -> tuple[float, ...]:
    """Show frame ``index`` (paused) and return its first face's probabilities, computed after this call."""
    seen = window.last.processed
    window.host.seek(index)
    qtbot.waitUntil(lambda: window.last.processed > seen and window.last.result.index == index, timeout=30_000)
    assert window.last.result.faces
    return window.last.result.faces[0].probs


def test_python_m_desktop_runs_the_trainer_sub_commands():
    """What the frozen app's Retrain relies on: its own executable runs ``train`` and ``evaluate``."""
    for command, expected in (("train", "--progress-jsonl"), ("evaluate", "--model")):
        proc = subprocess.run(
            [sys.executable, "-m", "desktop", command, "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        )
        assert proc.returncode == 0, proc.stderr
        assert f"{command} [-h]" in proc.stdout and expected in proc.stdout


def test_retrain_from_the_window_then_switch_models_in_the_running_pipeline(
    qtbot, tmp_path, settings, astronaut_video, real_classifier, tiny_csv
):
    runs = tmp_path / "runs"
    window = make_window(qtbot, real_classifier, astronaut_video, settings, runs)
    window.loop_action.setChecked(True)  # the video keeps playing while the model trains
    assert window.active_model == str(SHIPPED_MODEL)
    assert [checked for _, checked in model_entries(window)] == [True]
    assert window.retrain_action in window.findChild(QToolBar, "controls").actions()

    window.retrain_action.trigger()
    dialog = window.retrain_dialog
    assert dialog is not None and dialog.isVisible() and dialog.current_model == SHIPPED_MODEL
    dialog.data_edit.setText(str(tiny_csv))
    dialog.check_dataset()
    qtbot.waitUntil(lambda: dialog.state == "valid", timeout=30_000)
    dialog.epochs.setValue(2)
    dialog.batch_size.setValue(16)
    bar_values: list[int] = []
    dialog.run_bar.valueChanged.connect(bar_values.append)
    processed_before = window.last.processed
    qtbot.mouseClick(dialog.start_btn, Qt.MouseButton.LeftButton)
    assert dialog.state == "running" and dialog.process.processId() > 0  # a separate process
    qtbot.waitUntil(lambda: dialog.state != "running", timeout=120_000)
    assert dialog.state == "finished", dialog.log_view.toPlainText()[-2000:]
    shown = dialog.log_view.toPlainText()  # the trainer's stderr, as the user reads it: no TensorFlow start-up lines
    assert not [word for word in ("absl::InitializeLog", "cuInit", "cudart_stub", "oneDNN") if word in shown], shown
    assert [int(h["epoch"]) for h in dialog.curves.history] == [1, 2]
    assert any(0 < v < 100 for v in bar_values) and bar_values[-1] == 100  # the bar advanced, then completed
    assert window.last.processed > processed_before + 10  # the live pipeline kept running meanwhile
    assert window.active_model == str(SHIPPED_MODEL)  # a finished run does not switch by itself

    (run,) = finished_runs(runs)
    entries = model_entries(window)
    assert entries[0] == (entries[0][0], True) and entries[0][0].startswith("Shipped model")
    assert entries[1][0].startswith(f"Run {run.path.parent.name} — ") and "%" in entries[1][0]
    assert not entries[1][1]

    window.host.set_playing(False)
    qtbot.waitUntil(lambda: not window.playing)
    old = probs_at(qtbot, window)
    with qtbot.waitSignal(window.host.worker.modelLoaded, timeout=30_000):
        qtbot.mouseClick(dialog.use_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.active_model == str(dialog.best_model))
    qtbot.wait(300)  # every signal of the switch delivered: the name must not change after the first one
    name = f"Run {run.path.parent.name}"
    assert window.status_labels["model"].text() == name
    assert window.statusBar().currentMessage() == f"Now using {name}"
    assert window.host.worker.classifier.model_path == dialog.best_model
    assert settings.value(MODEL_KEY) == str(dialog.best_model)
    assert [checked for _, checked in model_entries(window)] == [False, True]

    new = probs_at(qtbot, window)  # the same frame, now through the new model
    assert not np.allclose(new, old, atol=1e-4)
    with VideoFileSource(astronaut_video) as video:
        video.seek(FRAME)
        image = video.read().image
    batch = faces_to_batch(image, [window.last.result.faces[0].box], window.settings_panel.config().margin)
    expected = window.host.worker.classifier.predict(batch)[0]
    assert np.allclose(new, expected, atol=1e-5)  # computed by the new model, not merely different

    window.shipped_action.trigger()  # "Use the shipped model" reverts
    qtbot.waitUntil(lambda: window.active_model == str(SHIPPED_MODEL), timeout=30_000)
    assert window.status_labels["model"].text() == SHIPPED_MODEL.name
    assert settings.value(MODEL_KEY) == ""
    assert probs_at(qtbot, window) == pytest.approx(old, abs=1e-5)
    assert [checked for _, checked in model_entries(window)] == [True, False]
    assert window.errors == []
    window.close()
    assert not window.host.thread.isRunning()


def test_the_chosen_model_is_remembered_and_broken_ones_never_replace_the_model_in_use(
    qtbot, tmp_path, settings, astronaut_video, real_classifier
):
    broken = tmp_path / "gone-bad" / "best.keras"
    broken.parent.mkdir()
    broken.write_bytes(b"not a zip file")
    settings.setValue(MODEL_KEY, str(broken))  # chosen in an earlier session, corrupted since
    assert remembered_model(settings) == broken
    classifier = EmotionClassifier(remembered_model(settings), device="cpu", fallback=True)  # as run_gui does
    window = make_window(qtbot, classifier, astronaut_video, settings)
    assert window.active_model == str(SHIPPED_MODEL)
    assert "best.keras" in window.errors[0] and "shipped model" in window.errors[0] and window.banner.isVisible()
    assert settings.value(MODEL_KEY) == ""  # forgotten: the next start shows no banner

    window.use_model(broken)  # choosing a broken file from the menu keeps the model in use
    qtbot.waitUntil(lambda: len(window.errors) == 2, timeout=30_000)
    assert "Still using emotion_lens.keras" in window.errors[1]
    assert window.active_model == str(SHIPPED_MODEL) and window.status_labels["model"].text() == "emotion_lens.keras"
    assert settings.value(MODEL_KEY) == ""

    good = tmp_path / "mine.keras"
    save_model(build_model("seed"), good, ModelMetadata(arch="seed"))
    window.use_model(good)
    qtbot.waitUntil(lambda: window.active_model == str(good), timeout=30_000)
    assert settings.value(MODEL_KEY) == str(good)
    entries = model_entries(window)
    assert entries[-1] == (f"mine.keras — {tmp_path}", True)  # a file that is not a Retrain run is listed too
    window.close()

    again = make_window(
        qtbot, EmotionClassifier(remembered_model(settings), device="cpu", fallback=True), astronaut_video, settings
    )
    assert again.active_model == str(good) and again.status_labels["model"].text() == "mine.keras"
    assert again.errors == []
    again.close()
