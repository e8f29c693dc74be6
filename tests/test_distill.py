"""Knowledge distillation (--teacher): the teachers' targets, how they enter the batches, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.batches import make_batches
from model.checkpoint import load_model
from model.data import TRAIN, Split, load_dataset
from model.distill import _faces_id, teacher_targets
from model.events import Teacher
from model.rundir import RunDir
from model.training import TrainConfig, train

pytestmark = pytest.mark.slow


def test_teacher_targets_are_the_mean_flip_averaged_probabilities(tiny_csv, tmp_path, caplog):
    runs = [train(TrainConfig(data=str(tiny_csv), out=str(tmp_path / n), epochs=1, batch_size=16, arch="seed",
                              seed=seed, average_from=0)) for n, seed in (("a", 0), ("b", 1))]  # fmt: skip
    x = load_dataset(tiny_csv).split(TRAIN).x
    models = [load_model(r.best_model).model for r in runs]
    expected = np.mean(
        [(m(x.astype(np.float32)).numpy() + m(x[:, :, ::-1].astype(np.float32)).numpy()) / 2 for m in models], axis=0
    )
    with caplog.at_level("INFO", logger="model.distill"):
        soft = teacher_targets([str(r.best_model) for r in runs], x)
    assert [m.split(" (")[0] for m in caplog.messages if m.startswith("teacher ")] == ["teacher 1/2 done",
                                                                                     "teacher 2/2 done"]  # fmt: skip
    assert soft.shape == (len(x), 7)
    np.testing.assert_allclose(soft, expected, atol=1e-5)
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-5)


def test_distilled_run_mixes_targets_and_reads_them_back_on_resume(tiny_csv, tmp_path):
    teacher = train(TrainConfig(data=str(tiny_csv), out=str(tmp_path / "t"), epochs=1, batch_size=16, arch="seed"))
    config = TrainConfig(data=str(tiny_csv), out=str(tmp_path / "s"), epochs=2, batch_size=8, arch="seed",
                         teacher=[str(teacher.best_model)], teacher_weight=0.3, augment=False)  # fmt: skip
    events: list[dict] = []
    config.epochs = 1
    train(config, emit=events.append)
    saved = RunDir(tmp_path / "s").teacher
    soft = np.load(saved)
    train_split = load_dataset(tiny_csv).split(TRAIN)
    np.testing.assert_allclose(soft, teacher_targets([str(teacher.best_model)], train_split.x), atol=1e-6)
    (teacher_event,) = [e for e in events if isinstance(e, Teacher)]
    assert teacher_event.train_accuracy == pytest.approx(float((soft.argmax(1) == train_split.y).mean()))

    batches = make_batches(train_split, config, soft)
    x, targets = batches[0]
    order = np.random.default_rng((config.seed, 0)).permutation(len(train_split))[:8]
    np.testing.assert_array_equal(x, train_split.x[order].astype(np.float32))
    expected = 0.7 * np.eye(7)[train_split.y[order]] + 0.3 * soft[order]
    np.testing.assert_allclose(targets, expected, atol=1e-6)

    # resume reads the saved targets (no second teacher pass), even with the teacher gone
    (tmp_path / "t" / "best.keras").unlink()
    config.epochs = 2
    events.clear()
    result = train(config, resume=True, emit=events.append)
    assert result.epochs_run == 2 and not [e for e in events if isinstance(e, Teacher)]
    assert json.loads((tmp_path / "s" / "config.json").read_text())["teacher"] == [str(teacher.best_model)]

    # another run takes those targets from the file as they are, with the teacher's model gone
    events.clear()
    train(TrainConfig(data=str(tiny_csv), out=str(tmp_path / "s2"), epochs=1, batch_size=8, arch="seed",
                      teacher=[str(saved)], teacher_weight=0.3, augment=False), emit=events.append)  # fmt: skip
    np.testing.assert_array_equal(np.load(RunDir(tmp_path / "s2").teacher), soft)
    (teacher_event,) = [e for e in events if isinstance(e, Teacher)]
    assert teacher_event.models == [str(saved)]
    assert teacher_event.train_accuracy == pytest.approx(float((soft.argmax(1) == train_split.y).mean()))
    assert json.loads((tmp_path / "s2" / "teacher.json").read_text())["faces"] == len(train_split)

    def refused(targets: Path, why: str) -> None:
        with pytest.raises(ValueError, match=why):
            train(TrainConfig(data=str(tiny_csv), out=str(tmp_path / "s3"), epochs=1, batch_size=8, arch="seed",
                              teacher=[str(targets)]))  # fmt: skip

    (tmp_path / "fewer").mkdir()
    np.save(tmp_path / "fewer" / "teacher.npy", soft[:-1])
    refused(tmp_path / "fewer" / "teacher.npy", "another run's data")
    (tmp_path / "empty.npy").write_bytes(b"")
    refused(tmp_path / "empty.npy", "not a teacher.npy that can be read")
    # the same number of faces in another order (another --seed on data without PublicTest): its stamp differs
    (tmp_path / "reordered").mkdir()
    np.save(tmp_path / "reordered" / "teacher.npy", soft)
    swapped = Split(train_split.x[::-1], train_split.y[::-1])
    (tmp_path / "reordered" / "teacher.json").write_text(json.dumps({"faces_sha256": _faces_id(swapped)}))
    refused(tmp_path / "reordered" / "teacher.npy", "made for other training faces")
    with pytest.raises(ValueError, match="cannot be mixed"):
        TrainConfig(data=str(tiny_csv), out="", teacher=[str(tmp_path / "T.NPY"), str(saved)]).check()
