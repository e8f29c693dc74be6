"""TensorFlow's C++ start-up lines are held back from the terminal; everything else gets through."""

from __future__ import annotations

import os
import tempfile
import threading

from model.chatter import held_back

START_UP = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1795891552.203857   25529 port.cc:153] oneDNN custom operations are on.\n",
    b"I0000 00:00:1795891552.204552   25529 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n",
    b"E0000 00:00:1795891559.074004   25529 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
]
REAL = b"E0000 00:00:1795891560.000001   25529 op_kernel.cc:1857] OP_REQUIRES failed: out of memory\n"


def test_start_up_lines_are_held_back_and_the_rest_arrives_in_order(capfd):
    with held_back():
        for line in START_UP[:2]:
            os.write(2, line)
        os.write(2, b"a line of our own\n")
        os.write(2, REAL)
        for line in START_UP[2:]:
            os.write(2, line)
        assert capfd.readouterr().err == ""  # held while the block runs
    assert capfd.readouterr().err.splitlines() == ["a line of our own", REAL.decode().rstrip()]
    os.write(2, START_UP[1])  # after the block, stderr is the terminal's again: nothing is filtered
    assert capfd.readouterr().err == START_UP[1].decode()


def test_an_error_in_the_block_still_restores_stderr_and_passes_its_lines_on(capfd):
    try:
        with held_back():
            os.write(2, b"why it failed\n")
            raise RuntimeError("conversion failed")
    except RuntimeError:
        pass
    os.write(2, b"after\n")
    assert capfd.readouterr().err.splitlines() == ["why it failed", "after"]


def test_without_a_temporary_file_the_block_runs_as_it_is(capfd, monkeypatch):
    def no_file():
        raise OSError("No usable temporary directory found")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_file)
    with held_back():
        os.write(2, START_UP[1])
    assert capfd.readouterr().err == START_UP[1].decode()  # nothing held back, nothing lost
    monkeypatch.undo()
    # The failed block let go: a block in another thread holds the start-up lines back again.
    worker = threading.Thread(target=_write_in_a_held_back_block, args=(START_UP[1], b"a line of our own\n"))
    worker.start()
    worker.join()
    assert capfd.readouterr().err == "a line of our own\n"


def _write_in_a_held_back_block(*lines: bytes) -> None:
    with held_back():
        for line in lines:
            os.write(2, line)
