"""GUI latency instrumentation for ``python -m desktop --bench-seconds N``.

Every frame carries ``time.monotonic()`` from the moment its source delivered it
(:attr:`desktop.core.sources.Frame.captured`); the video view reports when it painted that
frame. A 5 ms precise timer on the UI thread measures how late it fires: the longest UI
stall. Nothing is logged per frame; a few floats per frame go into lists that are
summarised once at the end.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal

from desktop.core.memory import rss_mb

log = logging.getLogger(__name__)

#: The UI-thread probe's period; its lateness beyond this is a stall.
PROBE_MS = 5
#: Stalls longer than this are counted (the target is none).
STALL_LIMIT_MS = 30.0
#: Set by a benchmark that launches the app: its ``time.time()`` just before the launch.
LAUNCHED_ENV = "EMOTION_LENS_LAUNCHED"


class LatencyMonitor(QObject):
    """Collects capture-to-paint latencies, painted frames, overlay updates and UI stalls for ``seconds``.

    :meth:`begin` starts the clock (the window calls it at the first painted frame, so model
    loading is not measured); ``finished`` carries :meth:`report` when the time is up.
    """

    finished = Signal(dict)

    def __init__(self, seconds: float, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.seconds = seconds
        self.started: float | None = None
        self.stopped: float | None = None
        self.latencies_ms: list[float] = []
        self.pipeline_ms: list[float] = []
        self.painted = 0
        self.overlays = 0  # painted frames that carried a fresh face result
        self.replaced = 0  # frames that reached the view but were replaced before being painted
        self.explanations = 0  # new heat maps shown with Explain on
        self.max_stall_ms = 0.0
        self.stalls = 0
        launched = os.environ.get(LAUNCHED_ENV)
        self.launched = float(launched) if launched else None
        self.first_label_s: float | None = None  # from the launch to the first painted frame with a labelled face
        self._last_tick = 0.0
        self._probe = QTimer(self)
        self._probe.setTimerType(Qt.TimerType.PreciseTimer)
        self._probe.setInterval(PROBE_MS)
        self._probe.timeout.connect(self._tick)
        self._end = QTimer(self)
        self._end.setSingleShot(True)
        self._end.setTimerType(Qt.TimerType.PreciseTimer)  # a coarse timer may fire 5% (0.5 s in 10 s) off
        self._end.timeout.connect(self._finish)

    @property
    def running(self) -> bool:
        return self.started is not None and self._end.isActive()

    def begin(self) -> None:
        if self.started is not None:
            return
        self.started = self._last_tick = time.monotonic()
        self._probe.start()
        self._end.start(round(self.seconds * 1000))

    def frame_painted(self, captured: float, faces: int, pipeline_ms: float) -> None:
        """The view painted a new frame (called from its paintEvent, on the UI thread)."""
        if faces and self.first_label_s is None and self.launched is not None:
            self.first_label_s = time.time() - self.launched
        if not self.running:
            return
        self.latencies_ms.append(1000.0 * (time.monotonic() - captured))
        self.pipeline_ms.append(pipeline_ms)
        self.painted += 1
        self.overlays += faces > 0

    def explanation_shown(self) -> None:
        if self.running:
            self.explanations += 1

    def frame_replaced(self) -> None:
        if self.running:
            self.replaced += 1

    def _tick(self) -> None:
        now = time.monotonic()
        late_ms = 1000.0 * (now - self._last_tick) - PROBE_MS
        self._last_tick = now
        if late_ms > self.max_stall_ms:
            self.max_stall_ms = late_ms
        if late_ms > STALL_LIMIT_MS:
            self.stalls += 1

    def _finish(self) -> None:
        self.stopped = time.monotonic()
        self._probe.stop()
        self.finished.emit(self.report())

    def report(self) -> dict[str, float | int]:
        elapsed = 0.0 if self.started is None else (self.stopped or time.monotonic()) - self.started
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        pipe = np.asarray(self.pipeline_ms) if self.pipeline_ms else np.zeros(1)
        per_s = 1.0 / elapsed if elapsed > 0 else 0.0
        return {
            "seconds": round(elapsed, 3),
            "frames_painted": self.painted,
            "displayed_fps": round(self.painted * per_s, 2),
            "overlay_hz": round(self.overlays * per_s, 2),
            "explain_hz": round(self.explanations * per_s, 2),
            "capture_to_paint_p50_ms": round(float(np.percentile(lat, 50)), 2),
            "capture_to_paint_p95_ms": round(float(np.percentile(lat, 95)), 2),
            "capture_to_paint_max_ms": round(float(lat.max()), 2),
            "pipeline_p50_ms": round(float(np.percentile(pipe, 50)), 2),
            "max_ui_stall_ms": round(max(self.max_stall_ms, 0.0), 2),
            "ui_stalls_over_30ms": self.stalls,
            "frames_replaced_before_paint": self.replaced,
            "launch_to_first_label_s": None if self.first_label_s is None else round(self.first_label_s, 3),
            "rss_mb": round(rss_mb(), 1),
            "tensorflow_loaded": "tensorflow" in sys.modules,
        }
