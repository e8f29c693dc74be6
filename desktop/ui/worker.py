"""All worker plumbing in one place: the pipeline runs on a QThread, driven by a timer in that thread.

The UI talks to the worker only through calls posted to its thread (:class:`WorkerHost`), and results
come back through a one-slot :class:`Mailbox`: a new frame replaces an unread one, so a
slow UI drops frames instead of queueing them and latency never grows. Errors come back
as the ``error`` signal, never as exceptions escaping the thread.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from desktop.core.annotate import draw_result
from desktop.core.classifier import Classifier, EmotionClassifier
from desktop.core.errors import USER_ERRORS, unexpected_error_message
from desktop.core.export import SessionLog, VideoRecorder
from desktop.core.pipeline import EXPLAIN_EVERY_S, Explanation, FrameResult, Pipeline, PipelineConfig
from desktop.core.runs import model_display_name
from desktop.core.sources import Frame, FrameSource, LatestFrameSource, SourceError, open_source
from desktop.ui.tasks import LatestTask
from model.saliency import Saliency, occlusion_map

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    """One processed frame, ready to show."""

    image: np.ndarray  # the annotated BGR frame
    result: FrameResult
    fps: float  # processed frames per second, recent average
    processed: int  # frames processed since the worker started
    captured: float = 0.0  # time.monotonic() when the source delivered the frame (capture-to-paint latency)
    explanation: Explanation | None = None  # the latest map of the face being explained, drawn on ``image``


class Mailbox:
    """Holds at most one item; ``put`` replaces an unread one (latest wins)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: Rendered | None = None

    def put(self, item: Rendered) -> bool:
        """Store ``item``; True when the box was empty (the reader needs a nudge)."""
        with self._lock:
            was_empty, self._item = self._item is None, item
            return was_empty

    def take(self) -> Rendered | None:
        with self._lock:
            item, self._item = self._item, None
            return item


def settle_memory() -> None:
    """Collect the garbage of loading a model, then exempt what survives from later full collections.

    TensorFlow and Keras leave hundreds of thousands of objects behind: a full (generation 2)
    collection walks them all, 15-175 ms with the GIL held (measured at start-up), freezing the
    UI thread meanwhile. Playback keeps adding objects (the session's results), so one comes
    sooner or later (none came in 10 s runs); after ``freeze`` it only walks the new objects.
    Frozen objects are still freed by reference counting; ``unfreeze`` first, so a replaced
    model's reference cycles are collected.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _guarded(method):
    """Run a slot so that no exception escapes the worker thread: it becomes the ``error`` signal."""

    @functools.wraps(method)
    def wrapper(self: PipelineWorker, *args):
        try:
            return method(self, *args)
        except USER_ERRORS as exc:
            log.warning("%s", exc)
            self.error.emit(str(exc))
        except Exception as exc:  # a bug: log the traceback, tell the user, keep the app alive
            log.error("unexpected error in the pipeline worker", exc_info=True)
            self.error.emit(unexpected_error_message(exc))
        return None

    return wrapper


def _display_name(classifier: Classifier) -> str:
    """The status bar's name for a model: "Run <folder>" for a Retrain run's, as the window names it too."""
    return model_display_name(classifier.model_path) if classifier.model_path else classifier.name


def _load_classifier(path: str, device: str) -> EmotionClassifier:
    """On the loader thread: load, check and warm up a model (a conversion to LiteRT may run first)."""
    classifier = EmotionClassifier(path, device=device)
    classifier.load()
    return classifier


class Explainer:
    """Occlusion maps off the frame thread (a :class:`~desktop.ui.tasks.LatestTask` runs it), on a copy of the model.

    A map is 26 faces through the model: 14 ms on a CPU with AVX-512, 66 ms on one with AVX2 only,
    where, computed between two frames, it cut a 30 fps video to 23 fps and raised capture-to-paint
    p95 from 38 to 123 ms (``benchmarks/explain_bench.py``). A LiteRT interpreter serves one thread
    at a time, so the maps run on a second copy of the model in use, loaded once per model.
    """

    def __init__(self) -> None:
        # (the frame thread's classifier, ours); weak, so a model swapped out is freed even if no map follows
        self._copy: tuple[weakref.ref[Classifier], Classifier] | None = None

    def __call__(self, classifier: Classifier, face: np.ndarray) -> Saliency:
        _yield_cpu()  # on every call: a LatestTask may run each call on a new thread
        if self._copy is None or self._copy[0]() is not classifier:
            self._copy = (weakref.ref(classifier), _own_copy(classifier))
        return occlusion_map(self._copy[1].predict, face)


def _yield_cpu() -> None:
    """Lower this thread's priority, so a map takes what CPU the frames and the UI leave: on 2 cores a map at
    normal priority beside the frames stalled the UI thread over 30 ms ~100 times in 20 s (Linux, measured).

    Per thread, by each system's own call (Qt's thread priorities do not reach a plain thread): Linux nice 10,
    Windows ``THREAD_PRIORITY_BELOW_NORMAL``, macOS the ``UTILITY`` quality of service. Where the call fails the
    thread keeps its priority: a map is slower to share the CPU, nothing else changes.
    """
    with contextlib.suppress(OSError, AttributeError):
        if sys.platform.startswith("linux"):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        elif sys.platform == "win32":
            kernel32 = _kernel32()
            kernel32.SetThreadPriority(kernel32.GetCurrentThread(), -1)  # THREAD_PRIORITY_BELOW_NORMAL
        elif sys.platform == "darwin":
            import ctypes

            QOS_CLASS_UTILITY = 0x11
            ctypes.CDLL(None).pthread_set_qos_class_self_np(QOS_CLASS_UTILITY, 0)


@functools.cache
def _kernel32():
    """Windows' kernel32 with the two calls' types set once (our own handle: ``ctypes.windll``'s stays as it is)."""
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32")
    kernel32.GetCurrentThread.restype = wintypes.HANDLE  # a pseudo-handle: -2 as a pointer-sized value
    kernel32.SetThreadPriority.argtypes = (wintypes.HANDLE, ctypes.c_int)
    return kernel32


def _own_copy(classifier: Classifier) -> Classifier:
    """The model of ``classifier`` loaded again (from its LiteRT twin: no conversion), on one LiteRT thread; a
    classifier that is not a model file (a test's fixed answers) has no state to share and is used as it is."""
    if not isinstance(classifier, EmotionClassifier) or classifier.model_path is None:
        return classifier
    copy = EmotionClassifier(classifier.model_path, device=classifier.requested_device, threads=1)
    copy.load()
    return copy


class PipelineWorker(QObject):
    """Owns the source, the pipeline and the recorder; every slot runs in the worker thread."""

    modelLoading = Signal()
    modelReady = Signal(str, str, str)  # model name, device, warning ("" when none)
    modelLoaded = Signal(str)  # the path of the model now in use ("" for a classifier without a file)
    modelFailed = Signal(str, str)  # path, why: loadModel kept the model in use
    sourceOpened = Signal(object)  # SourceInfo
    frameReady = Signal()  # something is waiting in the mailbox
    playingChanged = Signal(bool)
    ended = Signal()
    recordingChanged = Signal(bool)
    message = Signal(str)
    error = Signal(str)
    stopped = Signal()

    def __init__(self, classifier: Classifier, config: PipelineConfig, mailbox: Mailbox) -> None:
        super().__init__()
        self._model_request = 0
        self._loader = LatestTask(_load_classifier, "model-loader", self)  # moves to the worker's thread with it
        self._loader.done.connect(self._swapModel)
        self._loader.failed.connect(self._modelNotLoaded)
        self._explainer = LatestTask(Explainer(), "explainer", self)
        self._explainer.done.connect(self._explained)
        self._explainer.failed.connect(self._notExplained)
        self._classifier, self._config, self._mailbox = classifier, config, mailbox
        self._pipeline: Pipeline | None = None
        self._source: FrameSource | None = None
        self._pending_source: object = None
        self._recorder: VideoRecorder | None = None
        self._timer: QTimer | None = None
        self._stop = threading.Event()
        self._playing = self._loop = False
        self._session = SessionLog()  # this source's per-face rows, on disk: memory stays flat
        self._processed, self._fps = 0, 0.0
        self._last_time: float | None = None
        self._started: float | None = None  # when the first frame was processed, for the closing log line
        self._clock = (0.0, 0)  # (monotonic time, frame index) that playback is paced from
        self._next_index = 0
        self._last_frame: Frame | None = None  # shown again, explained, when Explain is asked for while paused
        self._last_result: FrameResult | None = None  # the pipeline's result for it
        self._explain_id = -1  # the face to explain, -1 for none
        self._explain_due = 0.0  # time.monotonic() when the next map may be computed
        self._explanation: Explanation | None = None
        self._explained_index = -1  # the frame the explanation was computed on

    @property
    def classifier(self) -> Classifier:
        """The classifier in use (read it from the worker thread, or in tests once frames flow)."""
        return self._classifier

    def request_stop(self) -> None:
        """Thread-safe: makes the current and later ticks return at once, and no model load report back."""
        self._stop.set()
        self._loader.close()
        self._explainer.close()

    # ----- slots (run in the worker thread) -----

    @Slot()
    @_guarded
    def start(self) -> None:
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._tick)
        self.modelLoading.emit()
        self._classifier.load()  # off the UI thread: a conversion (a child process) can take seconds
        self._pipeline = Pipeline(self._classifier, self._config)
        settle_memory()
        self.modelReady.emit(_display_name(self._classifier), self._classifier.device, self._classifier.warning or "")
        self.modelLoaded.emit(str(self._classifier.model_path or ""))
        if self._pending_source is not None and not self._stop.is_set():
            self.openSource(self._pending_source)

    @Slot(object)
    @_guarded
    def openSource(self, spec: object) -> None:
        """Open ``spec`` (or the first that opens of a list of specs); keep the old source if none does."""
        if self._pipeline is None:  # the model is still loading: open when it is ready
            self._pending_source = spec
            return
        specs = list(spec) if isinstance(spec, (list, tuple)) else [spec]
        errors: list[str] = []
        for candidate in specs:
            try:
                source = candidate if isinstance(candidate, FrameSource) else open_source(candidate)
            except SourceError as exc:
                errors.append(str(exc))
                log.info("cannot open %s: %s", candidate, exc)
                continue
            if errors:
                self.message.emit(f"{errors[-1]}; showing {source.info.name} instead")
            self._use_source(LatestFrameSource(source) if source.info.live else source)
            return
        raise SourceError(errors[-1] if errors else "no source given")

    def _use_source(self, source: FrameSource) -> None:
        self._close_source()
        self._source = source
        self._session.close()
        self._session = SessionLog()
        self._pipeline.reset()
        self._next_index = 0
        self.sourceOpened.emit(source.info)
        self._set_playing(True)

    @Slot(bool)
    def setPlaying(self, playing: bool) -> None:
        if self._source is not None:
            self._set_playing(playing)

    @Slot(int)
    @_guarded
    def seek(self, index: int) -> None:
        if self._source is None or not self._source.info.seekable:
            return
        self._source.seek(index)
        self._next_index = index
        self._pipeline.reset()
        if not self._playing:  # show the frame under the slider
            self._step()
        self._clock = (time.monotonic(), self._next_index)

    @Slot(int)
    @_guarded
    def setExplain(self, face_id: int) -> None:
        """Explain face ``face_id`` (-1: stop): a new map every :data:`EXPLAIN_EVERY_S` while frames flow.

        While paused, the frame on screen is explained at once, so a user can stop a video on a
        surprising label and ask why.
        """
        if face_id == self._explain_id:
            return
        self._explain_id, self._explain_due, self._explanation = face_id, 0.0, None
        if not self._playing:
            self._explain_still()

    def _explain_still(self) -> None:
        """No new frame is coming (paused, or the source ended): explain the one on screen, if it is not yet."""
        frame, result = self._last_frame, self._last_result
        if self._explain_id < 0 or frame is None or result is None:
            return
        if self._explanation is None or self._explained_index != frame.index:
            self._explain_due = 0.0
            self._ask_for_map(frame, result)

    def _ask_for_map(self, frame: Frame, result: FrameResult) -> None:
        """Hand the chosen face of ``result`` to the explainer when a map is due.

        The explainer computes one map at a time and keeps only the newest request waiting: on a CPU
        too slow for a map every :data:`EXPLAIN_EVERY_S`, maps come as fast as it can make them.
        """
        now = time.monotonic()
        if self._explain_id < 0 or now < self._explain_due:
            return
        face = next((f for f in result.faces if f.face_id == self._explain_id), None)
        model_input = self._pipeline.face_input(self._explain_id) if face is not None else None
        if model_input is not None:
            self._explain_due = now + EXPLAIN_EVERY_S
            self._explainer.submit((face.face_id, frame.index, face.box), self._classifier, model_input)

    @Slot(object, object)
    def _explained(self, key: tuple, saliency: Saliency) -> None:
        """A map came back (worker thread): it is drawn on the frames from now on, and at once while paused."""
        face_id, index, box = key
        if face_id != self._explain_id or self._stop.is_set():
            return  # Explain was turned off or moved to another face meanwhile
        self._explanation, self._explained_index = Explanation(face_id, box, saliency), index
        if not self._playing and self._last_frame is not None and self._last_result is not None:
            self._deliver(self._last_frame, self._last_result)

    @Slot(object, object)
    def _notExplained(self, key: tuple, exc: Exception) -> None:
        """A map failed: say so once and stop asking (the video plays on); Explain on again retries."""
        if key[0] != self._explain_id or self._stop.is_set():
            return
        log.error("cannot explain face %s", key[0], exc_info=exc)
        self._explain_id = -1
        self.error.emit(str(exc) if isinstance(exc, USER_ERRORS) else unexpected_error_message(exc))

    @Slot()
    def restart(self) -> None:
        self.seek(0)
        self.setPlaying(True)

    @Slot(bool)
    def setLoop(self, loop: bool) -> None:
        self._loop = loop

    @Slot(object)
    def configure(self, config: PipelineConfig) -> None:
        self._config = config
        if self._pipeline is not None:
            self._pipeline.configure(config)

    @Slot(str)
    @_guarded
    def startRecording(self, path: str) -> None:
        self.stopRecording()
        last = self._session.last  # later frames of another size are resized to this one
        if self._source is None or last is None:
            raise SourceError("nothing to record yet: open a source first")
        self._recorder = VideoRecorder(Path(path), self._source.info.fps, (last.width, last.height))
        self.recordingChanged.emit(True)

    @Slot()
    def stopRecording(self) -> None:
        if self._recorder is not None:
            self._recorder.close()
            self.message.emit(f"Recorded {self._recorder.frames} frames to {self._recorder.path}")
            self._recorder = None
            self.recordingChanged.emit(False)

    @Slot(str)
    @_guarded
    def exportCsv(self, path: str) -> None:
        self._session.export(Path(path))
        self.message.emit(f"Exported {self._session.rows} rows ({self._session.frames} frames) to {path}")

    @Slot(str)
    def loadModel(self, path: str) -> None:
        """Switch to another model file (Models menu, Retrain dialog) without pausing playback.

        The new model loads and warms up on one loader thread while frames keep flowing
        through the model in use; :meth:`_swapModel` puts it in between two frames. If it
        fails, the model in use stays and ``modelFailed`` says why. Requests are served one at
        a time, and of several that arrive while one loads only the last is loaded next: twenty
        clicks start one thread and at most two loads, never twenty.
        """
        self._model_request += 1
        self._loader.submit((self._model_request, path), path, self._classifier.requested_device)

    def wait_for_helpers(self, timeout_s: float) -> bool:
        """Thread-safe: wait for the model loader and the explainer to finish (shutdown); False if one is still busy."""
        return self._loader.wait(timeout_s) and self._explainer.wait(timeout_s)

    @Slot(object, object)
    def _modelNotLoaded(self, key: tuple[int, str], exc: Exception) -> None:
        """A background load failed: the model in use stays, and ``modelFailed`` says why."""
        request, path = key
        if request != self._model_request or self._stop.is_set():
            return
        if isinstance(exc, USER_ERRORS):
            log.warning("cannot switch to %s: %s", path, exc)
            why = str(exc)
        else:  # a bug or a broken file we did not foresee: keep the current model
            log.error("unexpected error loading the model %s", path, exc_info=exc)
            why = unexpected_error_message(exc)
        self.modelFailed.emit(path, why)

    @Slot(object, object)
    def _swapModel(self, key: tuple[int, str], classifier: EmotionClassifier) -> None:
        """Runs in the worker thread, between two frames, when a background load has finished."""
        if key[0] != self._model_request or self._stop.is_set():
            return  # a later request superseded this one, or the worker is stopping
        self._classifier = classifier
        if self._pipeline is not None:
            self._pipeline.set_classifier(classifier)
        settle_memory()  # the old model's cycles go now, between two frames, not in the middle of playback
        self.modelLoaded.emit(str(classifier.model_path))  # first: it clears the last model's warnings
        self.modelReady.emit(_display_name(classifier), classifier.device, classifier.warning or "")

    @Slot()
    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.stop()
        self.stopRecording()
        self._close_source()
        self._session.close()
        if self._started is not None and self._processed > 1:
            seconds = time.monotonic() - self._started
            log.info("processed %d frames in %.1f s (%.1f fps)", self._processed, seconds, self._processed / seconds)
        self.stopped.emit()

    # ----- internals -----

    def _close_source(self) -> None:
        self._last_frame = self._last_result = self._explanation = None
        if self._source is not None:
            self._source.close()
            self._source = None

    def _set_playing(self, playing: bool) -> None:
        self._playing = playing
        self._clock = (time.monotonic(), self._next_index)
        self._last_time = None
        self.playingChanged.emit(playing)
        if not playing:
            self._explain_still()
        if playing and self._timer is not None:
            self._timer.start(0)

    def _fail(self, message: str) -> None:
        self._close_source()
        self._playing = False
        self.playingChanged.emit(False)
        self.error.emit(message)

    @Slot()
    def _tick(self) -> None:
        if self._stop.is_set() or not self._playing or self._source is None:
            return
        try:
            self._catch_up()
            if not self._step():
                return
        except SourceError as exc:
            log.warning("%s", exc)
            self._fail(str(exc))
            return
        except Exception as exc:  # a bug: keep the app alive and say so
            log.error("unexpected error while processing a frame", exc_info=True)
            self._fail(unexpected_error_message(exc))
            return
        self._schedule()

    def _catch_up(self) -> None:
        """Files and generated sources play at their own rate: skip frames when processing falls behind."""
        info = self._source.info
        if info.live:
            return
        start, index = self._clock
        due = index + int((time.monotonic() - start) * info.fps)
        if due > self._next_index:
            self._source.skip(due - self._next_index)
            self._next_index = due

    def _schedule(self) -> None:
        if not self._playing or self._stop.is_set():
            return
        info = self._source.info
        if info.live:
            self._timer.start(0)  # the read blocks until the camera has a new frame
            return
        start, index = self._clock
        delay = start + (self._next_index - index) / info.fps - time.monotonic()
        self._timer.start(max(0, round(delay * 1000)))

    def _step(self) -> bool:
        """Read and process one frame; False at the end of the source."""
        frame = self._source.read()
        if frame is None:
            if self._loop and self._source.info.seekable:
                self._source.seek(0)
                self._pipeline.reset()
                self._next_index = 0
                self._clock = (time.monotonic(), 0)
                self._timer.start(0)
            else:
                self._playing = False
                self.playingChanged.emit(False)
                self.ended.emit()
                self._explain_still()
            return False
        self._next_index = frame.index + 1
        self._show(frame)
        return True

    def _show(self, frame: Frame) -> None:
        """Process ``frame``, hand the chosen face to the explainer when a map is due, post the frame to the UI."""
        result = self._pipeline.process(frame.image, index=frame.index, time_s=frame.time_s)
        self._last_frame, self._last_result = frame, result
        self._ask_for_map(frame, result)
        self._deliver(frame, result, log_it=True)

    def _deliver(self, frame: Frame, result: FrameResult, *, log_it: bool = False) -> None:
        """Draw ``result`` and the latest map on ``frame`` and put it in the mailbox.

        ``log_it=False`` shows a frame again (paused, a map arrived): it is not recorded, logged or counted twice.
        """
        image = draw_result(frame.image, result, self._explanation, self._pipeline.config.margin)
        if log_it:
            if self._recorder is not None:
                self._recorder.write(image)
            self._session.add(result)
            now = time.monotonic()
            if self._last_time is not None:
                rate = 1.0 / max(now - self._last_time, 1e-6)
                self._fps = rate if self._fps == 0 else 0.9 * self._fps + 0.1 * rate
            self._last_time = now
            self._processed += 1
            if self._started is None:
                self._started = now
        if self._mailbox.put(Rendered(image, result, self._fps, self._processed, frame.captured, self._explanation)):
            self.frameReady.emit()


class WorkerHost(QObject):
    """The UI side: starts the worker's thread, posts requests to it, stops it cleanly.

    Each request is a call posted to the worker's thread (``QTimer.singleShot(0, worker, call)``): it runs
    there, in the order posted, between two frames, and never if the worker is already gone.
    """

    def __init__(self, classifier: Classifier, config: PipelineConfig, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mailbox = Mailbox()
        self.thread = QThread(self)  # owned by the host, which the window owns: a known order of destruction
        self.thread.setObjectName("pipeline")
        self.worker = PipelineWorker(classifier, config, self.mailbox)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.start)
        self.thread.finished.connect(self.worker.deleteLater)  # with its timer, in its own thread, once stopped
        # direct: quit() is thread-safe, and the UI thread may be blocked in wait() for this very signal
        self.worker.stopped.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)

    def _post(self, method: Callable[..., None], *args: object) -> None:
        QTimer.singleShot(0, self.worker, functools.partial(method, *args))

    def start(self) -> None:
        """Start the thread; connect to the worker's signals first, or early ones (modelReady) are lost."""
        self.thread.start()

    def open_source(self, spec: object | Sequence[object]) -> None:
        self._post(self.worker.openSource, spec)

    def set_playing(self, playing: bool) -> None:
        self._post(self.worker.setPlaying, playing)

    def seek(self, index: int) -> None:
        self._post(self.worker.seek, index)

    def restart(self) -> None:
        self._post(self.worker.restart)

    def set_loop(self, loop: bool) -> None:
        self._post(self.worker.setLoop, loop)

    def configure(self, config: PipelineConfig) -> None:
        self._post(self.worker.configure, config)

    def start_recording(self, path: str) -> None:
        self._post(self.worker.startRecording, path)

    def stop_recording(self) -> None:
        self._post(self.worker.stopRecording)

    def export_csv(self, path: str) -> None:
        self._post(self.worker.exportCsv, path)

    def load_model(self, path: str) -> None:
        self._post(self.worker.loadModel, path)

    def set_explain(self, face_id: int) -> None:
        self._post(self.worker.setExplain, face_id)

    def shutdown(self, timeout_ms: int = 2000) -> None:
        """Stop the worker, release the source and join the thread.

        During playback this takes one frame's processing. While TensorFlow is still
        loading it cannot be interrupted, so after ``timeout_ms`` we keep waiting rather
        than destroy a running QThread.
        """
        if not self.thread.isRunning():
            return
        self.worker.request_stop()
        self._post(self.worker.stop)
        if not self.thread.wait(timeout_ms):
            log.warning("the pipeline worker is still busy (loading the model?); waiting for it")
            self.thread.wait()
        if not self.worker.wait_for_helpers(timeout_ms / 1000):  # daemon threads: they cannot keep the app alive
            log.warning("a model load or an Explain map is still running at exit; leaving it")
