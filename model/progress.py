"""The trainer's progress in words, on a terminal: a bar while an epoch runs, one line per epoch."""

from __future__ import annotations

import sys
from typing import IO

from model import events as ev


class ProgressPrinter:
    """Writes each :mod:`model.events` event as people read it (the batch bar only on a terminal)."""

    def __init__(self, stream: IO[str] = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def __call__(self, event: ev.Event) -> None:
        line = self.words(event)
        if line is not None:
            self.stream.write(line)
            self.stream.flush()

    def words(self, event: ev.Event) -> str | None:
        match event:
            case ev.Start():
                return (
                    f"training {event.arch} ({event.params:,} params) on {event.device}: {event.train_size} faces, "
                    f"validation {event.val_size} ({event.validation}), epochs {event.initial_epoch + 1}-"
                    f"{event.epochs}, {event.steps} steps each\n"
                )
            case ev.Batch() if self.tty:
                frac = event.batch / event.steps
                eta = event.elapsed / max(frac, 1e-9) * (1 - frac)
                return (
                    f"\repoch {event.epoch}/{event.epochs} [{'#' * int(frac * 30):<30}] {event.batch}/{event.steps} "
                    f"loss {event.loss:.4f} acc {event.accuracy:.4f} eta {eta:4.0f}s "
                )
            case ev.Epoch():
                line = (
                    f"epoch {event.epoch}/{event.epochs} loss {event.loss:.4f} acc {event.accuracy:.4f} val_loss "
                    f"{event.val_loss:.4f} val_acc {event.val_accuracy:.4f} lr {event.lr:.5f} {event.seconds:.0f}s "
                    f"(best {event.best_val_accuracy:.4f})"
                )
                return ("\r" if self.tty else "") + line.ljust(110) + "\n"
            case ev.Teacher():
                return (
                    f"teacher targets from {len(event.models)} model(s) in {event.seconds:.0f} s: "
                    f"{event.train_accuracy:.2%} of the training faces right, mean confidence "
                    f"{event.mean_confidence:.2f}\n"
                )
            case ev.AverageBegin():
                first, last = event.epochs
                return f"averaging the weights of epochs {first}-{last}, measuring batch-norm statistics again\n"
            case ev.Average():
                first, last = event.epochs
                verdict = "the best model" if event.best else "not better than the best epoch"
                return (
                    f"average of epochs {first}-{last}: val_acc {event.val_accuracy:.4f} ({verdict}) "
                    f"{event.seconds:.0f}s\n"
                )
            case ev.Done():
                return (
                    f"done: best validation accuracy {event.best_val_accuracy:.4f} at epoch {event.best_epoch}; "
                    f"model {event.best_model}\n"
                )
        return None
