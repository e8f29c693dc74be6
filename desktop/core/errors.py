"""How the app tells a user that something failed: one list of expected errors, one line for the rest.

:data:`USER_ERRORS` holds the errors whose message a user can act on (a file that will not open, a camera
that is gone, a model that does not load, an export that cannot be written): they are shown as their
message alone, with no traceback. Anything else is a bug: its traceback goes to the log file and the
user sees :func:`unexpected_error_message`. ``ValueError`` is not here on purpose: inside the app it
is a bug; only the command line adds it, for its argument checks.
"""

from __future__ import annotations

from pathlib import Path

from desktop.core.classifier import ClassifierError
from desktop.core.detector import DetectorError
from desktop.core.export import ExportError
from desktop.core.sources import SourceError
from model.checkpoint import ModelLoadError

#: Errors with a message a user can act on: shown as one line, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (SourceError, ModelLoadError, ClassifierError, DetectorError, ExportError)


def unexpected_error_message(exc: BaseException, log_file: Path | None = None) -> str:
    """One line for an error nobody foresaw (its traceback is logged separately), naming the log file if known."""
    where = log_file if log_file is not None else "the log file"
    return f"Unexpected error: {type(exc).__name__}: {exc} (details in {where})"
