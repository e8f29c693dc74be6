"""TensorFlow's and LiteRT's C++ start-up lines, kept off the terminal.

Importing TensorFlow 2.20 on a machine without a GPU prints, from C++, before absl logging is
set up: that absl is not set up, that oneDNN is on, that no CUDA driver was found and (at the
first device query) ``E0000 ... failed call to cuInit``. None of ``TF_CPP_MIN_LOG_LEVEL``,
``ABSL_MIN_LOG_LEVEL``, ``GLOG_minloglevel`` or ``ABSL_STDERRTHRESHOLD`` silences them (each
tried on ``import tensorflow``). To a user who ran a command on a CPU they read as errors, so
:func:`held_back` sends the process's stderr to a file for the length of a block and passes on,
when the block ends, every line but those (which go to the debug log).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

log = logging.getLogger(__name__)

#: The lines held back: absl's banner, C++ INFO lines (``I0000 ...``) and the CUDA probe's error
#: on a machine without a usable driver. Warnings and any other error still reach the terminal.
NOISE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|I\d{4} [\d:.]+ +\d+ \S+\.cc:\d+\]"
    rb"|E\d{4} [\d:.]+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
)

_holding = threading.RLock()  # one thread redirects at a time; the others' lines land in its file


@contextlib.contextmanager
def held_back() -> Iterator[None]:
    """Run a block with stderr (the file descriptor, which C++ writes to) going to a temporary file,
    then write what it got to the real stderr, less the lines :data:`NOISE` matches.

    Lines written by any thread meanwhile (Python's included) arrive when the block ends, in order.
    Without a usable stderr (a windowed app on Windows has none) or a temporary file, or while
    another thread holds it back already, the block just runs.
    """
    redirected = _redirect_stderr()
    if redirected is None:
        yield
        return
    held, saved = redirected
    try:
        yield
    finally:
        _flush_stderr()
        os.dup2(saved, 2)
        os.close(saved)
        _holding.release()
        with held, contextlib.suppress(OSError):
            held.seek(0)
            for line in held:
                if NOISE.match(line):
                    log.debug("held back: %s", line.decode(errors="replace").rstrip())
                else:
                    os.write(2, line)


def _redirect_stderr() -> tuple[IO[bytes], int] | None:
    """Point file descriptor 2 at a new temporary file; return it and a copy of the old descriptor."""
    if not _holding.acquire(blocking=False):
        return None
    held = None
    try:
        _flush_stderr()
        held = tempfile.TemporaryFile()  # noqa: SIM115 (held_back closes it when its block ends)
        saved = os.dup(2)
    except OSError:
        if held is not None:
            held.close()
        _holding.release()
        return None
    os.dup2(held.fileno(), 2)
    return held, saved


def _flush_stderr() -> None:
    with contextlib.suppress(AttributeError, ValueError, OSError):  # no sys.stderr, or a closed one
        sys.stderr.flush()


def import_keras() -> Any:
    """``keras``, imported (and, with TensorFlow as its backend, TensorFlow's devices found) quietly."""
    with held_back():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # where the CUDA probe prints its error
    return keras
