"""The run folder's lock: one trainer per run, released with its process (no TensorFlow here)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

from model.rundir import RunDir

PROBE = textwrap.dedent(
    """
    import sys
    from model.rundir import RunDir
    run = RunDir(sys.argv[1])
    print(run.in_use())
    try:
        with run.hold():
            print("held")
    except FileExistsError as exc:
        print(exc)
    """
)


def probe(folder) -> list[str]:
    """What another process sees of ``folder``: in use?, and what holding it gives."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(folder)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    return out.stdout.splitlines()


def make_stopped_run(folder):
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "state.json").write_text('{"epoch": 1}')
    return RunDir(folder)


def test_a_held_run_is_in_use_for_every_process_and_free_once_let_go(tmp_path):
    run = make_stopped_run(tmp_path / "run")
    assert not run.in_use() and run.stopped
    assert not run.lock.exists()  # looking does not create the lock file
    with run.hold():
        with run.hold():  # the command line, then train(): the same process holds it once
            assert run.in_use() and not run.stopped
        assert run.in_use()
        in_use, held = probe(run.path)
        assert in_use == "True" and "is being trained by another process" in held
    assert not run.in_use() and run.stopped
    assert probe(run.path) == ["False", "held"]


def test_a_killed_holder_lets_go(tmp_path):
    run = make_stopped_run(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom model.rundir import RunDir\n"
                               "with RunDir(sys.argv[1]).hold():\n    print('held', flush=True)\n    time.sleep(60)",
                               str(run.path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run.in_use()
    finally:
        holder.kill()
        holder.wait()
    assert run.stopped


def test_a_run_that_fails_before_it_wrote_anything_leaves_no_folder(tmp_path):
    run = RunDir(tmp_path / "runs" / "new")
    with pytest.raises(ValueError), run.hold():
        raise ValueError("no face found")
    assert not run.path.exists()
    kept = RunDir(tmp_path / "runs" / "kept")
    with kept.hold():
        (kept.path / "config.json").write_text("{}")
    assert kept.path.is_dir()  # a folder with anything in it stays


@pytest.mark.skipif(sys.platform == "win32", reason="flock is the POSIX lock")
def test_a_file_system_without_locks_trains_unlocked_with_a_warning(tmp_path, monkeypatch, caplog):
    """Some network mounts refuse flock (ENOLCK): that is no other trainer, so the run goes on."""
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    run = make_stopped_run(tmp_path / "run")
    (run.path / "lock").touch()
    assert not run.in_use() and run.stopped
    with run.hold():
        assert "cannot lock the run folder" in caplog.text
