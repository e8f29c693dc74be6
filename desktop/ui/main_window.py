"""The main window: video with boxes, a card of bars per face, the chosen face's history and explanation."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
from PySide6.QtCore import QPointF, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QSlider,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from desktop.core.classifier import Classifier
from desktop.core.detector import DetectorConfig
from desktop.core.pipeline import Face, PipelineConfig
from desktop.core.runs import list_models, model_display_name, same_file
from desktop.core.sources import SourceInfo, list_cameras
from desktop.ui.explain_panel import ExplainPanel
from desktop.ui.faces import FacePanel, ProbabilityStrip
from desktop.ui.latency import LatencyMonitor
from desktop.ui.retrain_dialog import RetrainDialog
from desktop.ui.tasks import LatestTask
from desktop.ui.widgets import SettingsPanel, VideoView
from desktop.ui.worker import Rendered, WorkerHost
from model.checkpoint import SHIPPED_MODEL

log = logging.getLogger(__name__)

VIDEO_FILTER = (
    "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.wmv);;Images (*.png *.jpg *.jpeg *.bmp);;All files (*)"
)
_BANNER = {
    "error": "background:#b3261e;color:white;padding:6px;",
    "warning": "background:#f2c94c;color:black;padding:6px;",
}


def load_config(settings: QSettings) -> PipelineConfig:
    """Detector settings and smoothing from the last run (defaults for anything missing or invalid)."""
    d, p = DetectorConfig(), PipelineConfig()
    try:
        detector = DetectorConfig(
            scale_factor=float(settings.value("detector/scale_factor", d.scale_factor)),
            min_neighbors=int(settings.value("detector/min_neighbors", d.min_neighbors)),
            min_face_size=int(settings.value("detector/min_face_size", d.min_face_size)),
        )
        return PipelineConfig(detector=detector, smoothing_s=float(settings.value("smoothing_s", p.smoothing_s)))
    except (TypeError, ValueError) as exc:
        log.warning("ignoring invalid saved settings (%s)", exc)
        return p


#: QSettings key of the model the user chose (Models menu or Retrain); absent or "" = the shipped model.
MODEL_KEY = "model/path"


def remembered_model(settings: QSettings) -> Path | None:
    """The model chosen in an earlier session, or None for the shipped one.

    The file may since have gone or broken: the classifier then falls back to the shipped
    model with a warning banner and the window forgets the choice.
    """
    value = str(settings.value(MODEL_KEY, "") or "")
    return Path(value) if value else None


def _saved_values(config: PipelineConfig) -> dict[str, object]:
    """The settings the window remembers, by their QSettings keys."""
    d = config.detector
    return {
        "detector/scale_factor": d.scale_factor,
        "detector/min_neighbors": d.min_neighbors,
        "detector/min_face_size": d.min_face_size,
        "smoothing_s": config.smoothing_s,
    }


def save_config(settings: QSettings, config: PipelineConfig) -> None:
    """Keep the settings the user changed; forget those left at their defaults.

    A value saved only because it was the default at the time would pin it: when a later
    version measures a better default, users who never touched the setting get it.
    """
    defaults = _saved_values(PipelineConfig())
    for key, value in _saved_values(config).items():
        if value == defaults[key]:
            settings.remove(key)
        else:
            settings.setValue(key, value)


class MainWindow(QMainWindow):
    framesShown = Signal(int)  # frames processed so far, each time one is shown

    def __init__(
        self,
        classifier: Classifier,
        *,
        source: object = None,
        settings: QSettings | None = None,
        runs_root: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings("EmotionLens", "EmotionLens")
        self.runs_root = runs_root  # Retrain runs (None: the user data folder)
        #: The model file in use, once the worker has loaded it ("" for a classifier without a file).
        self.active_model = ""
        self._requested_model = str(classifier.model_path or "")
        self._pending_model: str | None = None  # a switch asked for and not yet answered by the worker
        self.retrain_dialog: RetrainDialog | None = None
        self._bench: LatencyMonitor | None = None
        self.bench_result: dict | None = None
        self.setWindowTitle("Emotion Lens")
        self.setAcceptDrops(True)
        config = load_config(self.settings)
        self.host = WorkerHost(classifier, config, self)
        self.last: Rendered | None = None
        self.source_info: SourceInfo | None = None
        self.playing = False
        self.errors: list[str] = []  # every error shown, newest last (tests read it)
        self._exit_after: tuple[int, Path | None] | None = None
        self._closed = False
        #: The face whose history the strip shows and which Explain explains: clicked, else the largest.
        self.selected_face: int | None = None
        self._chosen = False  # the user clicked it (kept while it is tracked), rather than the largest face
        self._explaining = -1  # the face the worker was last asked to explain, -1 for none
        self._build(config)
        self._connect()
        self.host.start()
        self.loop_action.setChecked(str(self.settings.value("loop", "false")).lower() == "true")
        geometry = self.settings.value("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1100, 680)
        self.host.open_source(self._startup_sources(source))

    # ----- building -----

    def _build(self, config: PipelineConfig) -> None:
        self.video = VideoView()
        self.video.set_message("Loading model…")
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.banner)
        column.addWidget(self.video, 1)
        column.addWidget(self.slider)
        self.faces = FacePanel()
        self.strip = ProbabilityStrip()
        self.explain_panel = ExplainPanel()
        self.settings_panel = SettingsPanel(config)
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.explain_panel, "Explain")
        self.side_tabs.addTab(self.settings_panel, "Detection")
        self.side_tabs.setCurrentWidget(self.settings_panel)
        right = QWidget()
        side = QVBoxLayout(right)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.faces, 1)
        side.addWidget(self.strip)
        side.addWidget(self.side_tabs)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        right.setMinimumWidth(320)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([780, 320])
        self.setCentralWidget(splitter)

        self.open_action = self._action("&Open video…", QKeySequence.StandardKey.Open, self._choose_file)
        self.demo_action = self._action("&Demo", None, lambda: self.open_source("demo"))
        self.camera_menu = QMenu("&Camera", self)
        self.camera_menu.aboutToShow.connect(self._fill_camera_menu)
        self._camera_probe = LatestTask(lambda in_use: list_cameras(in_use=in_use), "camera-probe", self)
        self._camera_probe.done.connect(self._on_cameras)
        self._camera_probe.failed.connect(self._on_camera_probe_failed)
        self.play_action = self._action("Pause", Qt.Key.Key_Space, self.toggle_play)
        self.restart_action = self._action("&Restart", None, self.host.restart)
        self.loop_action = self._action("&Loop", None, None)
        self.loop_action.setCheckable(True)
        self.loop_action.toggled.connect(self.host.set_loop)
        self.snapshot_action = self._action("&Snapshot…", QKeySequence("Ctrl+S"), self._choose_snapshot)
        self.record_action = self._action("&Record…", QKeySequence("Ctrl+R"), self._toggle_recording)
        self.record_action.setCheckable(True)
        self.export_action = self._action("&Export CSV…", QKeySequence("Ctrl+E"), self._choose_export)
        self.explain_action = self._action("E&xplain", QKeySequence("E"), None)
        self.explain_action.setCheckable(True)
        self.explain_action.setToolTip("Show which parts of the chosen face drove its label (click a face to choose)")
        self.explain_action.toggled.connect(self.set_explain)
        self.retrain_action = self._action("Re&train…", None, self.open_retrain)
        self.retrain_action.setToolTip("Train the emotion model on your own faces, then switch to it")
        self.shipped_action = self._action("Use the &shipped model", None, lambda: self.use_model(SHIPPED_MODEL))
        self.quit_action = self._action("&Quit", QKeySequence("Ctrl+Q"), self.close)

        source_menu = self.menuBar().addMenu("&Source")
        source_menu.addActions([self.open_action, self.demo_action])
        source_menu.addMenu(self.camera_menu)
        source_menu.addSeparator()
        source_menu.addAction(self.quit_action)
        play_menu = self.menuBar().addMenu("&Playback")
        play_menu.addActions([self.play_action, self.restart_action, self.loop_action])
        play_menu.addSeparator()
        play_menu.addAction(self.explain_action)
        save_menu = self.menuBar().addMenu("S&ave")
        save_menu.addActions([self.snapshot_action, self.record_action, self.export_action])
        self.models_menu = self.menuBar().addMenu("&Models")
        self.models_menu.setToolTipsVisible(True)
        self.models_menu.aboutToShow.connect(self.fill_models_menu)
        self.fill_models_menu()  # so the menu is never empty, e.g. for keyboard navigation before it opens

        toolbar = QToolBar("Controls")
        toolbar.setObjectName("controls")
        toolbar.addActions([self.open_action, self.demo_action])
        toolbar.addAction(self.camera_menu.menuAction())
        toolbar.addSeparator()
        toolbar.addActions([self.play_action, self.restart_action, self.loop_action])
        toolbar.addSeparator()
        toolbar.addActions([self.snapshot_action, self.record_action, self.export_action])
        toolbar.addSeparator()
        toolbar.addAction(self.explain_action)
        toolbar.addAction(self.retrain_action)
        self.addToolBar(toolbar)

        self.status_labels = {name: QLabel() for name in ("source", "fps", "latency", "device", "model")}
        bar = QWidget()
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 0, 0)
        for label in self.status_labels.values():
            label.setContentsMargins(8, 0, 8, 0)
            row.addWidget(label)
        self.statusBar().addPermanentWidget(bar)
        self.status_labels["device"].setText("loading model…")

    def _action(self, text: str, shortcut, slot) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if slot is not None:
            action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work even when menus and toolbars are hidden
        return action

    def _connect(self) -> None:
        w = self.host.worker
        w.modelReady.connect(self._on_model_ready)
        w.modelLoaded.connect(self._on_model_loaded)
        w.modelFailed.connect(self._on_model_failed)
        w.sourceOpened.connect(self._on_source_opened)
        w.frameReady.connect(self._on_frame)
        w.playingChanged.connect(self._on_playing)
        w.ended.connect(self._on_ended)
        w.recordingChanged.connect(self.record_action.setChecked)
        w.message.connect(self._on_message)  # bound methods, not lambdas: Qt then runs them in the UI thread
        w.error.connect(self.show_error)
        self.settings_panel.changed.connect(self._on_config)
        self.faces.faceClicked.connect(self.select_face)
        self.video.clicked.connect(self._on_video_clicked)
        self.slider.sliderReleased.connect(lambda: self.host.seek(self.slider.value()))
        self.slider.valueChanged.connect(self._on_slider)

    def _startup_sources(self, source: object) -> list[object]:
        """The source asked for; else the last one, the first webcam, then the demo."""
        if source is not None:
            return [source]
        last = str(self.settings.value("last_source", "") or "")
        candidates = [last] if last and (last.isdigit() or last == "demo" or Path(last).exists()) else []
        return list(dict.fromkeys([*candidates, "0", "demo"]))

    # ----- public API (menus, drag-and-drop, tests) -----

    def open_source(self, spec: object) -> None:
        self.video.set_message("Opening…")
        self.host.open_source(spec)

    def toggle_play(self) -> None:
        self.host.set_playing(not self.playing)

    @Slot(int)
    def select_face(self, face_id: int) -> None:
        """Choose a face (a click on it or on its card): the strip and Explain follow it while it is tracked."""
        self.selected_face, self._chosen = face_id, True
        self.faces.set_selected(face_id)
        if self.last is not None:  # in a crowd the chosen face gets its full card now, even when paused
            self.faces.set_faces(self.last.result.faces)
        self._update_explain()

    @Slot(bool)
    def set_explain(self, on: bool) -> None:
        """Explain the chosen face (the largest one until the user clicks another) a few times a second."""
        if self.explain_action.isChecked() != on:
            self.explain_action.setChecked(on)  # comes back here through toggled
            return
        self.explain_panel.set_on(on)
        if on:
            self.side_tabs.setCurrentWidget(self.explain_panel)
        self._explaining = -2  # tell the worker again, and reset the panel
        self._update_explain()

    def _update_explain(self) -> None:
        target = self.selected_face if self.explain_action.isChecked() and self.selected_face is not None else -1
        if target != self._explaining:
            self._explaining = target
            self.explain_panel.set_explanation(None, target if target >= 0 else None)
            self.host.set_explain(target)

    @Slot(QPointF)
    def _on_video_clicked(self, point: QPointF) -> None:
        """Choose the face under the click (the smallest box, when boxes overlap)."""
        if self.last is None:
            return
        hits = [
            f for f in self.last.result.faces
            if f.box.x <= point.x() <= f.box.x + f.box.w and f.box.y <= point.y() <= f.box.y + f.box.h
        ]  # fmt: skip
        if hits:
            self.select_face(min(hits, key=lambda f: f.box.area).face_id)

    def _follow_faces(self, faces: tuple[Face, ...]) -> Face | None:
        """Keep the chosen face while it is tracked; otherwise choose the largest face in view."""
        chosen = next((f for f in faces if f.face_id == self.selected_face), None)
        if chosen is None or not self._chosen:
            largest = max(faces, key=lambda f: f.box.area, default=None)
            if chosen is None or (largest is not None and largest.face_id != chosen.face_id):
                chosen, self._chosen = largest, False
        face_id = chosen.face_id if chosen is not None else None
        if face_id != self.selected_face:
            self.selected_face = face_id
            self.faces.set_selected(face_id)
        self._update_explain()
        return chosen

    def save_snapshot(self, path: str | Path) -> bool:
        if self.last is None:
            self.show_error("Nothing to save yet: no frame has been processed")
            return False
        if not cv2.imwrite(str(path), self.last.image):
            self.show_error(f"{path}: cannot write this image")
            return False
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    @Slot(str)
    def show_error(self, text: str, kind: str = "error") -> None:
        self.errors.append(text)
        self.banner.setStyleSheet(_BANNER[kind])
        self.banner.setText(text)
        self.banner.setProperty("kind", kind)
        self.banner.show()
        if self.last is None or self.source_info is None:
            self.video.set_message("Open a video (Ctrl+O), choose a camera or the demo")
        if self._exit_after is not None and kind == "error":
            self._finish(1)
        elif self._bench is not None and kind == "error":
            self._bench = None
            if self.close():
                QApplication.exit(1)

    def open_retrain(self) -> RetrainDialog:
        """Show the Retrain dialog (one per window, kept while it trains), starting from the model in use."""
        dialog = self.retrain_dialog
        if dialog is None:
            dialog = RetrainDialog(self._current_model_path(), self, self.runs_root, self.settings)
            self.retrain_dialog = dialog
            dialog.model_chosen.connect(self.use_model)
        elif dialog.state != "running":
            dialog.current_model = self._current_model_path()  # fine-tune and compare against what is in use now
            dialog.offer_stopped_run()  # one stopped since (another window, the command line)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def use_model(self, path: str | Path) -> None:
        """Switch the running pipeline to the model file ``path``; the worker loads it between two frames."""
        path = str(path)
        if self._pending_model is None and same_file(path, self.active_model):
            self.statusBar().showMessage(f"{model_display_name(path)} is already in use", 5000)
            return
        self._pending_model = path
        self.status_labels["model"].setText(f"loading {model_display_name(path)}…")
        self.statusBar().showMessage(f"Loading {model_display_name(path)}…")
        self.host.load_model(path)

    def fill_models_menu(self) -> None:
        """The shipped model and every finished run, the active one checked (rebuilt each time it opens)."""
        menu = self.models_menu
        menu.clear()
        menu.addAction(self.retrain_action)
        menu.addSeparator()
        group = QActionGroup(menu)
        entries = [(e.label, e.path) for e in list_models(self.runs_root)]
        if self.active_model and not any(same_file(p, self.active_model) for _, p in entries):
            other = Path(self.active_model)  # from --model: listed so the menu always shows what is in use
            entries.append((f"{model_display_name(other)} — {other.parent}", other))
        for label, path in entries:
            action = menu.addAction(label)
            action.setCheckable(True)
            action.setChecked(same_file(path, self.active_model))
            action.setToolTip(str(path))
            action.setActionGroup(group)
            action.triggered.connect(lambda _checked=False, p=path: self.use_model(p))
        menu.addSeparator()
        menu.addAction(self.shipped_action)
        self.shipped_action.setEnabled(not same_file(self.active_model, SHIPPED_MODEL))

    def exit_after(self, frames: int, screenshot: Path | None) -> None:
        """Quit after ``frames`` processed frames (or at the end of the source), saving a screenshot."""
        self._exit_after = (frames, screenshot)

    def bench(self, seconds: float) -> LatencyMonitor:
        """Measure for ``seconds`` from the first painted frame, then quit; the figures land in ``bench_result``.

        The source loops, so a short file lasts the whole measurement.
        """
        monitor = self._bench = LatencyMonitor(seconds, self)
        monitor.finished.connect(self._on_bench_finished)
        self.video.monitor = monitor
        self.host.set_loop(True)  # not through loop_action: a benchmark must not change the saved setting
        return monitor

    def _current_model_path(self) -> Path:
        return Path(self.active_model) if self.active_model else SHIPPED_MODEL

    # ----- worker signals -----

    @Slot(str, str, str)
    def _on_model_ready(self, name: str, device: str, warning: str) -> None:
        self.status_labels["device"].setText(device)
        self.status_labels["model"].setText(name)
        self.video.set_message("Opening…" if self.last is None else "")
        if warning:
            self.show_error(warning, "warning")

    @Slot(str)
    def _on_model_loaded(self, path: str) -> None:
        first = not self.active_model and self._pending_model is None
        self.active_model = path
        if path:  # the label itself is set by _on_model_ready, with the worker's name for the model
            self.status_labels["model"].setToolTip(path)
        if first:
            remembered = remembered_model(self.settings)
            if remembered and same_file(remembered, self._requested_model) and not same_file(path, remembered):
                self.settings.setValue(MODEL_KEY, "")  # it fell back to the shipped model: forget the broken choice
            return
        if self._pending_model is None or not same_file(path, self._pending_model):
            return
        self._pending_model = None
        self.settings.setValue(MODEL_KEY, "" if same_file(path, SHIPPED_MODEL) else path)
        self.banner.hide()  # an earlier model warning or error no longer applies
        self.statusBar().showMessage(f"Now using {model_display_name(path)}", 10000)

    @Slot(str, str)
    def _on_model_failed(self, path: str, message: str) -> None:
        if self._pending_model is not None and same_file(path, self._pending_model):
            self._pending_model = None
        if self.active_model:
            self.status_labels["model"].setText(model_display_name(self.active_model))
        current = model_display_name(self.active_model) if self.active_model else "the current model"
        self.statusBar().clearMessage()
        self.show_error(f"{message}. Still using {current}.")

    @Slot(object)
    def _on_source_opened(self, info: SourceInfo) -> None:
        self.source_info = info
        if self.banner.property("kind") == "error":  # a source error is over; a model warning stays
            self.banner.hide()
        self.setWindowTitle(f"Emotion Lens — {info.name}")
        self.status_labels["source"].setText(info.name)
        self.slider.setEnabled(info.seekable)
        self.slider.setVisible(info.seekable)
        self.slider.setRange(0, max((info.frame_count or 1) - 1, 0))
        if info.spec and info.kind != "synthetic":
            self.settings.setValue("last_source", info.spec)

    @Slot()
    def _on_frame(self) -> None:
        item = self.host.mailbox.take()
        if item is None:
            return
        self.last = item
        result = item.result
        self.video.set_message("")
        faces = len(result.faces)
        self.video.set_frame(item.image, item.captured, faces, result.timings.total_ms)
        if self._bench is not None:
            self._bench.begin()  # measures from the first frame shown: model loading is not part of it
        chosen = self._follow_faces(result.faces)
        self.faces.set_faces(result.faces)
        self.strip.add(self.selected_face, result.time_s, chosen.probs if chosen is not None else ())
        if item.explanation is not None and item.explanation.face_id == self._explaining >= 0:
            if self._bench is not None and item.explanation is not self.explain_panel.explanation():
                self._bench.explanation_shown()
            self.explain_panel.set_explanation(item.explanation)
        still = self.source_info is not None and self.source_info.still  # "0.0 fps" reads as stuck
        self.status_labels["fps"].setText("still image" if still else f"{item.fps:.1f} fps")
        self.status_labels["latency"].setText(
            f"inference {result.timings.classify_ms:.0f} ms, frame {result.timings.total_ms:.0f} ms"
        )
        if not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(result.index)
            self.slider.blockSignals(False)
        self.framesShown.emit(item.processed)
        if self._exit_after is not None and item.processed >= self._exit_after[0]:
            self._finish(0)

    @Slot(bool)
    def _on_playing(self, playing: bool) -> None:
        self.playing = playing
        self.play_action.setText("Pause" if playing else "Play")

    @Slot(str)
    def _on_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 10000)

    @Slot()
    def _on_ended(self) -> None:
        self.statusBar().showMessage("End of source", 5000)
        if self._exit_after is not None:
            self._finish(0)

    @Slot(object)
    def _on_config(self, config: PipelineConfig) -> None:
        self.host.configure(config)
        save_config(self.settings, config)

    @Slot(int)
    def _on_slider(self, value: int) -> None:
        if not self.slider.isSliderDown():  # a click or key on the slider; drags seek on release
            self.host.seek(value)

    # ----- dialogs -----

    def _choose_file(self) -> None:
        start = str(Path(str(self.settings.value("last_dir", Path.home()))))
        path, _ = QFileDialog.getOpenFileName(self, "Open video", start, VIDEO_FILTER)
        if path:
            self.settings.setValue("last_dir", str(Path(path).parent))
            self.open_source(path)

    def _fill_camera_menu(self) -> None:
        """Probe the cameras off the UI thread (opening each can take a second); the menu fills when it is done."""
        current = self.source_info.spec if self.source_info and self.source_info.kind == "camera" else None
        self.camera_menu.clear()
        self.camera_menu.addAction("Looking for cameras…").setEnabled(False)
        self._camera_probe.submit(None, int(current) if current else None)

    @Slot(object, object)
    def _on_cameras(self, _key: object, indices: list[int]) -> None:
        self.camera_menu.clear()
        for index in indices:
            self.camera_menu.addAction(f"Camera {index}", lambda i=index: self.open_source(i))
        if not indices:
            self.camera_menu.addAction("No camera found").setEnabled(False)

    @Slot(object, object)
    def _on_camera_probe_failed(self, _key: object, exc: Exception) -> None:
        log.warning("cannot list the cameras: %s", exc, exc_info=exc)
        self._on_cameras(None, [])

    def _choose_snapshot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save snapshot", str(Path.home() / "emotion_lens.png"), "PNG (*.png)"
        )
        if path:
            self.save_snapshot(path)

    def _toggle_recording(self, checked: bool) -> None:
        self.record_action.setChecked(not checked)  # the worker's recordingChanged sets the real state
        if not checked:
            self.host.stop_recording()
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Record annotated video", str(Path.home() / "emotion_lens.mp4"), "Video (*.mp4 *.avi)"
        )
        if path:
            self.host.start_recording(path)

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export CSV", str(Path.home() / "emotion_lens.csv"), "CSV (*.csv)")
        if path:
            self.host.export_csv(path)

    # ----- window events -----

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.open_source(paths[0])
            event.acceptProposedAction()

    @Slot(dict)
    def _on_bench_finished(self, report: dict) -> None:
        info = self.source_info
        self.bench_result = {
            "source": info.name if info else "",
            "source_fps": info.fps if info else 0.0,
            "model": model_display_name(self.active_model) if self.active_model else "",
            **report,
        }
        self._bench = None
        self.video.monitor = None
        if self.close():
            QApplication.exit(0)

    def _finish(self, code: int) -> None:
        """Quit for ``--exit-after-frames``; the screenshot waits 0.1 s, for the widgets this frame added (face
        cards and rows: Qt shows and places them from queued events) to be shown and laid out."""
        _, screenshot = self._exit_after
        self._exit_after = None
        QTimer.singleShot(100, lambda: self._save_and_quit(code, screenshot))

    def _save_and_quit(self, code: int, screenshot: Path | None) -> None:
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            if not self.grab().save(str(screenshot)):
                log.error("cannot save the screenshot to %s", screenshot)
                code = code or 1
        if self.close():  # refused while a training runs and the user keeps it: then the app stays
            QApplication.exit(code)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.retrain_dialog is not None and not self.retrain_dialog.close():
            event.ignore()  # training is running and the user chose to keep it
            return
        if not self._closed:
            self._closed = True
            self.settings.setValue("geometry", self.saveGeometry())
            self.settings.setValue("loop", self.loop_action.isChecked())
            self._camera_probe.close()
            if self.retrain_dialog is not None:
                self.retrain_dialog.shutdown()
            self.host.shutdown()
            if not self._camera_probe.wait(2.0):  # a camera that takes long to open: leave the daemon thread
                log.warning("a camera probe is still running at exit")
        event.accept()
