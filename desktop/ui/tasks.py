"""One way to run a slow call off the thread that asks for it: :class:`LatestTask`.

Loading a model (seconds, maybe a conversion) and checking a data set (seconds to parse FER2013)
must not block the thread that asks, and a user who asks again before the answer comes wants the
answer to the last question only. A ``LatestTask`` runs its function on one helper thread, one call
at a time; requests that arrive while it is busy replace each other, so twenty clicks cost at most
two calls. Results come back as queued signals, in the thread the task object lives in.

The helper is a plain daemon thread that only emits: emitting from another thread is queued and
safe, while a ``QRunnable`` that owns a signal object is deleted by the pool in the worker thread,
taking the QObject with it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class LatestTask(QObject):
    """``submit(key, *args)`` runs ``fn(*args)`` in the background; ``done(key, result)`` or ``failed(key, exc)``.

    ``key`` says which request an answer belongs to (a path, a request number). Exceptions are
    passed on as they are, traceback included: the receiver words them, and logs the bugs.
    """

    done = Signal(object, object)  # key, result
    failed = Signal(object, object)  # key, exception

    def __init__(self, fn: Callable[..., Any], name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn, self._name = fn, name
        self._lock = threading.Lock()
        self._pending: tuple[object, tuple] | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def submit(self, key: object, *args: object) -> None:
        with self._lock:
            self._pending = (key, args)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Drop a waiting request, and emit nothing more (the receiver is going away)."""
        self._closed.set()
        with self._lock:
            self._pending = None

    def wait(self, timeout_s: float) -> bool:
        """Wait for the call in progress (at shutdown); False if it is still running."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._pending is None or self._closed.is_set():
                    self._thread = None
                    return
                (key, args), self._pending = self._pending, None
            try:
                result = self._fn(*args)
            except Exception as exc:
                self._answer("failed", key, exc)
            else:
                self._answer("done", key, result)

    def _answer(self, signal: str, key: object, value: object) -> None:
        if self._closed.is_set():
            return
        try:
            getattr(self, signal).emit(key, value)
        except RuntimeError:  # the task was deleted with its window while the call ran: nobody is left to tell
            log.debug("%s: the answer for %r was dropped, its receiver is gone", self._name, key)
