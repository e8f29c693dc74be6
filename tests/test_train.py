"""train_emotion.py on tiny synthetic data: training, checkpoints, kill and resume, evaluate, errors."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT

from model.checkpoint import load_model, read_metadata
from model.events import VERSION, from_json
from model.litert import file_sha256, tflite_path
from model.rundir import RunDir
from model.training import TrainConfig, TrainingCancelled, train

pytestmark = pytest.mark.slow
SCRIPT = str(ROOT / "train_emotion.py")


def run_cli(*args, check=False, timeout=300, env=None):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, check=check)  # fmt: skip


def test_train_two_epochs_writes_run_folder(tiny_csv, tmp_path):
    events = []
    config = TrainConfig(data=str(tiny_csv), out=str(tmp_path / "run"), epochs=2, batch_size=16, arch="seed", lr=0.01)
    result = train(config, emit=events.append)
    run = tmp_path / "run"
    # by default the weights from the middle epoch on are averaged: here epoch 2 of 2
    for name in ("config.json", "state.json", "last.keras", "best.keras", "best.json", "history.csv",
                 "metrics.json", "curves.png", "confusion.png", "average.npz", "average.keras",
                 "best_epoch.keras"):  # fmt: skip
        assert (run / name).exists(), name
    kinds = [e.kind for e in events]
    assert kinds.index("average_begin") < kinds.index("average") < kinds.index("done")
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("epoch") == 2 and kinds.count("checkpoint") == 2 and "batch" in kinds
    assert result.epochs_run == 2
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss,accuracy,val_loss,val_accuracy,lr") and len(history) == 3
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 28 and len(metrics["confusion"]) == 7
    assert abs(metrics["accuracy"] - result.best_val_accuracy) < 1e-6  # same model, same split
    # the model the run offers has a current LiteRT twin, written once at the end (best.keras is the average here)
    assert tflite_path(run / "best.keras").is_file()
    assert read_metadata(run / "best.keras").tflite_keras_sha256 == file_sha256(run / "best.keras")
    best = load_model(run / "best.keras")
    assert best.metadata.best_epoch == result.best_epoch and best.metadata.split_sizes == {
        "train": 56,
        "validation": 28,
    }


def test_kill_and_resume_continues_epochs_and_optimizer(tiny_csv, tmp_path):
    run = tmp_path / "run"
    jsonl = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, "train", "--data", tiny_csv, "--out", run, "--epochs", "3", "--batch-size", "8",
         "--arch", "seed", "--progress-jsonl", jsonl],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if jsonl.exists() and '"event": "checkpoint"' in jsonl.read_text():
            break
        assert proc.poll() is None, "trainer exited before its first checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGSTOP)  # held mid-run: a second trainer on its folder is refused
    try:
        assert RunDir(run).in_use() and not RunDir(run).stopped
        second = run_cli("train", "--resume", run)
        assert second.returncode == 2 and "is being trained by another process" in second.stderr, second.stderr
    finally:
        proc.send_signal(signal.SIGKILL)  # a crash: no chance to clean up
        proc.wait()
    assert RunDir(run).stopped  # the lock went with the process
    state = json.loads((run / "state.json").read_text())
    assert 1 <= state["epoch"] < 3
    killed_at = state["epoch"]
    saved = load_model(run / "last.keras", compile=True).model
    steps = 7  # 56 faces / batch 8
    assert int(saved.optimizer.iterations.numpy()) == killed_at * steps
    momenta = [v.numpy() for v in saved.optimizer.variables[1:]]
    assert any(np.abs(m).sum() > 0 for m in momenta)  # momentum buffers were saved, not reset

    done = run_cli("train", "--resume", run, "--progress-jsonl", "-")
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(e["version"] == VERSION and from_json(json.dumps(e)).to_dict() == e for e in events)  # the protocol
    assert events[0]["event"] == "start" and events[0]["initial_epoch"] == killed_at
    epochs = [e["epoch"] for e in events if e["event"] == "epoch"]
    assert epochs == list(range(killed_at + 1, 4))
    history = (run / "history.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in history] == [1, 2, 3]
    final = load_model(run / "last.keras", compile=True).model
    assert int(final.optimizer.iterations.numpy()) == 3 * steps  # the schedule continued, not restarted


def test_cancel_keeps_last_complete_epoch(tiny_csv, tmp_path):
    calls = {"n": 0}

    def stop_in_second_epoch():
        calls["n"] += 1
        return calls["n"] > 7 + 2  # one full epoch (7 steps), then two batches of the next

    config = TrainConfig(data=str(tiny_csv), out=str(tmp_path / "run"), epochs=3, batch_size=8, arch="seed")
    with pytest.raises(TrainingCancelled):
        train(config, should_stop=stop_in_second_epoch)
    assert json.loads((tmp_path / "run" / "state.json").read_text())["epoch"] == 1
    result = train(config, resume=True)
    assert result.epochs_run == 3


def test_fine_tune_from_init_and_evaluate_cli(tiny_csv, tmp_path):
    first = train(TrainConfig(data=str(tiny_csv), out=str(tmp_path / "a"), epochs=1, batch_size=16, arch="seed"))
    tuned = run_cli("train", "--data", tiny_csv, "--out", tmp_path / "b", "--epochs", "1", "--init",
                    first.best_model, "--batch-size", "16", "--compare", first.best_model,
                    "--progress-jsonl", "-")  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    done = json.loads(tuned.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["compare_model"] == str(first.best_model)
    assert done["compare_accuracy"] == pytest.approx(first.metrics.accuracy)  # same model, same split
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["init"] == str(first.best_model) and config["lr"] is None

    out = run_cli("evaluate", "--model", tmp_path / "b" / "best.keras", "--data", tiny_csv, "--usage", "PublicTest")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"accuracy", "macro_f1", "per_class", "confusion", "n"} <= set(summary)
    assert summary["n"] == 28 and set(summary["per_class"]["Fear"]) >= {"recall", "precision"}
    assert "accuracy" in out.stdout.splitlines()[2] and summary["engine"] == "LiteRT"
    assert summary["balanced_accuracy"] == pytest.approx(np.mean([c["recall"] for c in summary["per_class"].values()]))


def test_mirrored_strategy_on_two_logical_cpus(tiny_csv, tmp_path):
    env = {**os.environ, "EMOTION_LENS_MIRROR_CPUS": "2"}
    out = run_cli("train", "--data", tiny_csv, "--out", tmp_path / "m", "--epochs", "1", "--batch-size", "16",
                  "--arch", "seed", "--progress-jsonl", "-", env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    start = json.loads(out.stdout.splitlines()[0])
    assert start["device"].startswith("2 CPUs (MirroredStrategy)")  # ", bfloat16" on a CPU that has it
    assert load_model(tmp_path / "m" / "best.keras").model is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "/nonexistent/fer.csv", "--epochs", "1"], "no such file"),
        (["train", "--resume", "/nonexistent/run"], "not a resumable run folder"),
        (["evaluate", "--model", "/nonexistent/m.keras", "--data", "{csv}"], "model file not found"),
        (["evaluate", "--model", "/nonexistent/m.keras", "--data", "{bad}"], "model file not found"),  # checked first
        (["evaluate", "--data", "{bad}"], "line 2: emotion 12 is outside 0-6"),
        (["train", "--data", "{csv}", "--init", "{bad}"], "not a .keras model file"),
        (["train", "--data", "{csv}", "--teacher", "/nonexistent/t.keras"], "model file not found"),
        (["train", "--data", "{csv}", "--teacher", "{bad}", "--teacher-weight", "2"], "--teacher-weight 2"),
        (["train", "--data", "{csv}", "--epochs", "0"], "--epochs 0 must be at least 1"),  # was taken as 30
        (["train", "--data", "{csv}", "--batch-size", "0"], "--batch-size 0 must be at least 1"),
        (["train", "--data", "{csv}", "--lr", "-1"], "--lr -1 must be above 0"),
        (["train", "--data", "{csv}", "--scale", "1.2", "0.8"], "--scale 1.2 0.8 must be 0 < LOW <= HIGH"),
        (["evaluate", "--data", "{one}", "--usage", "Publictset"], "--usage Publictset: not a split"),  # not all of it
        (["train", "--data", "{csv}", "--detect", "--soft-labels", "{bad}"], "which --detect's photos are not"),
    ],
)
def test_bad_input_is_one_line_error_without_traceback(tiny_csv, tmp_path, args, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels\n12," + " ".join(["1"] * 2304) + "\n")
    one = tmp_path / "one.csv"  # no Usage column: one split
    one.write_text("emotion,pixels\n3," + " ".join(["1"] * 2304) + "\n")
    args = [a.format(csv=tiny_csv, bad=bad, one=one) for a in args]
    out = run_cli(*args, "--progress-jsonl", "-") if args[0] == "train" else run_cli(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: ") and message in out.stderr
    if args[0] == "train" and "--resume" not in args:
        assert json.loads(out.stdout.splitlines()[-1])["event"] == "error"


def test_bad_options_and_data_are_refused_before_tensorflow_loads(tiny_csv, tmp_path):
    """A typo costs a user a fraction of a second, not the 5-10 s TensorFlow takes to load."""
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels\n12," + " ".join(["1"] * 2304) + "\n")
    check = ("import sys, train_emotion; code = train_emotion.main(sys.argv[1:]); "
             "print(code, 'keras' in sys.modules, 'tensorflow' in sys.modules)")  # fmt: skip
    for args in (["train", "--data", bad], ["train", "--data", tiny_csv, "--init", tmp_path / "missing.keras"],
                 ["train", "--data", tiny_csv, "--compare", bad], ["train", "--resume", tmp_path],
                 ["train", "--data", tiny_csv, "--patience", "-1"]):  # fmt: skip
        out = subprocess.run([sys.executable, "-c", check, *map(str, args)], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
        assert out.stdout.split() == ["2", "False", "False"], (args, out.stdout, out.stderr[-1000:])
        assert out.stderr.strip().splitlines()[-1].startswith("error: ")


def test_help_explains_every_option_and_shows_the_training_defaults():
    from train_emotion import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps sub-parsers here
    assert set(commands) == {"train", "evaluate", "export", "explain"}
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help and len(action.help) > 10, (name, action.dest)  # every option says what it does
    train_parser = commands["train"]
    defaults = TrainConfig(data="", out="")
    for action in train_parser._actions:  # argparse's defaults are TrainConfig's: one source
        if action.dest in defaults.__dataclass_fields__ and action.default is not None and action.dest != "teacher":
            assert action.default == getattr(defaults, action.dest), action.dest
    assert "(default 64)" in train_parser.format_help() and "(default 30)" in train_parser.format_help()
    out = run_cli("train", "--help", check=True)
    assert "--soft-labels" in out.stdout and "--teacher-weight" in out.stdout


def test_evaluate_detect_cuts_faces_as_the_app_does_and_counts_misses(tmp_path):
    """An image folder scored with --detect: a real photo's face is found and classified as the app would;
    an image without a face counts as wrong; the JSON line says how many and gives balanced accuracy."""
    import cv2

    from desktop.core.classifier import EmotionClassifier
    from desktop.core.pipeline import Pipeline

    photo = cv2.imread(str(ROOT / "assets" / "astronaut.png"))
    app_top = Pipeline(EmotionClassifier(device="cpu")).process(photo).faces[0].emotion_key  # what the app says
    other = next(k for k in ("angry", "sad") if k != app_top)
    for key, image in ((app_top, photo), (other, np.full((300, 300, 3), 90, np.uint8))):
        (tmp_path / "faces" / key).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "faces" / key / "0.png"), image)
    out = run_cli("evaluate", "--data", tmp_path / "faces", "--detect")
    assert out.returncode == 0, out.stderr
    assert "has no PublicTest split; scoring all of it" in out.stderr and "Training" not in out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["detect"] is True and summary["n"] == 2 and summary["no_face"] == 1
    assert summary["accuracy"] == 0.5 and summary["balanced_accuracy"] == 0.5
    assert summary["recall"][app_top.capitalize()] == 1.0 and summary["recall"][other.capitalize()] == 0.0
    assert sum(map(sum, summary["confusion"])) == 1  # the image without a face is not in the matrix
    # Without --detect the blank image is taken as a face crop, so it gets a prediction.
    whole = json.loads(run_cli("evaluate", "--data", tmp_path / "faces").stdout.strip().splitlines()[-1])
    assert whole["no_face"] == 0 and sum(map(sum, whole["confusion"])) == 2


def test_train_detect_learns_the_faces_in_photos_and_resumes_on_the_same_faces(tmp_path):
    """Photos rather than face crops (a user's own pictures): each one's face is found and cut as the app does,
    a photo without a face is left out and counted, and a resumed run reads the faces it found (faces.npz)
    unless the photos have changed."""
    import cv2

    from model.spec import LABEL_KEYS

    photo = cv2.imread(str(ROOT / "assets" / "astronaut.png"))
    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("test", 1)):
        for key in LABEL_KEYS:
            (tmp_path / "photos" / split / key).mkdir(parents=True)
            for i in range(count):  # the face somewhere in a larger frame, as in a snapshot
                frame = np.full((600, 760, 3), 120, np.uint8)
                y, x = rng.integers(0, 88), rng.integers(0, 248)
                frame[y : y + 512, x : x + 512] = photo
                cv2.imwrite(str(tmp_path / "photos" / split / key / f"{i}.png"), frame)
    cv2.imwrite(str(tmp_path / "photos" / "train" / "happy" / "wall.png"), np.full((600, 760, 3), 120, np.uint8))
    run = tmp_path / "run"
    out = run_cli("train", "--data", tmp_path / "photos", "--detect", "--out", run, "--epochs", "1",
                  "--batch-size", "4", "--arch", "seed", "--progress-jsonl", "-")  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    start = json.loads(out.stdout.splitlines()[0])
    assert (start["event"], start["train_size"], start["val_size"]) == ("start", 14, 7)
    assert "finding the face in each photo" in out.stderr  # the Retrain dialog's log says why it waits
    assert "[Training]: no face found in 1 of 15 images; they are left out" in out.stderr
    assert json.loads((run / "config.json").read_text())["detect"] is True
    assert (run / "faces.npz").is_file()
    out = run_cli("train", "--resume", run, "--epochs", "2", "--progress-jsonl", "-")
    assert out.returncode == 0, out.stderr[-2000:]
    start = json.loads(out.stdout.splitlines()[0])
    assert (start["initial_epoch"], start["train_size"], start["val_size"]) == (1, 14, 7)
    assert "read from faces.npz" in out.stderr and "finding the face" not in out.stderr  # not looked for again
    assert "[Training]: no face found in 1 of 15 images" in out.stderr  # still said
    # A photo added since: the faces are looked for again, and the new one is trained on.
    cv2.imwrite(
        str(tmp_path / "photos" / "train" / "sad" / "new.png"),
        cv2.imread(str(tmp_path / "photos" / "train" / "sad" / "0.png")),
    )
    out = run_cli("train", "--resume", run, "--epochs", "3", "--progress-jsonl", "-")
    assert out.returncode == 0, out.stderr[-2000:]
    start = json.loads(out.stdout.splitlines()[0])
    assert (start["initial_epoch"], start["train_size"], start["val_size"]) == (2, 15, 7)
    assert "the photos have changed" in out.stderr and "finding the face" in out.stderr
    with np.load(run / "faces.npz") as saved:  # kept for the next resume
        assert sorted(len(saved[f"y_{i}"]) for i in range(len(saved["splits"]))) == [7, 15]


def test_detect_reads_a_phone_photo_upright_and_refuses_a_split_without_faces(tmp_path, caplog):
    """A portrait photo is stored on its side with an EXIF tag saying so: --detect reads it upright, as the app
    opens it. A split where no photo has a face is an error, not a validation split silently replaced."""
    import cv2
    from PIL import Image

    from model.data import DatasetError
    from train_emotion import detected_dataset

    photo = cv2.imread(str(ROOT / "assets" / "astronaut.png"))
    frame = np.full((700, 560, 3), 120, np.uint8)  # a portrait frame (in taller ones Haar finds her shuttle too)
    frame[94:606, 24:536] = photo
    (tmp_path / "phone" / "train" / "happy").mkdir(parents=True)
    (tmp_path / "phone" / "test" / "happy").mkdir(parents=True)
    sideways = Image.fromarray(cv2.cvtColor(np.rot90(frame).copy(), cv2.COLOR_BGR2RGB))  # as the sensor stored it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to show
    sideways.save(tmp_path / "phone" / "train" / "happy" / "portrait.jpg", exif=exif, quality=95)
    cv2.imwrite(str(tmp_path / "phone" / "test" / "happy" / "wall.jpg"), np.full((700, 560, 3), 120, np.uint8))
    with pytest.raises(DatasetError, match=r"\[PublicTest\]: no face found in any of its 1 images"):
        detected_dataset(tmp_path / "phone", skip_bad=False)
    cv2.imwrite(str(tmp_path / "phone" / "test" / "happy" / "wall.jpg"), frame)
    dataset = detected_dataset(tmp_path / "phone", skip_bad=False)
    assert [len(dataset.split(s)) for s in ("Training", "PublicTest")] == [1, 1]
    cache = tmp_path / "run" / "faces.npz"
    detected_dataset(tmp_path / "phone", skip_bad=False, cache=cache)
    (tmp_path / "phone" / "train" / "happy" / ".DS_Store").write_bytes(b"rewritten by the system")  # not an image
    with caplog.at_level(logging.INFO, logger="train_emotion"):
        kept = detected_dataset(tmp_path / "phone", skip_bad=False, cache=cache)
    assert "read from faces.npz" in caplog.text
    assert np.array_equal(kept.split("Training").x, dataset.split("Training").x)
    caplog.clear()
    cache.write_bytes(cache.read_bytes()[:200])  # a cut-off file: looked for again, not a traceback
    with caplog.at_level(logging.WARNING, logger="train_emotion"):
        again = detected_dataset(tmp_path / "phone", skip_bad=False, cache=cache)
    assert "unreadable" in caplog.text and np.array_equal(again.split("Training").x, dataset.split("Training").x)
    upright, stored = dataset.split("PublicTest").x[0].ravel(), dataset.split("Training").x[0].ravel()
    assert np.corrcoef(upright.astype(float), stored.astype(float))[0, 1] > 0.9  # the same face, the same way up
