"""FER+ crowd votes as soft targets (--soft-labels): reading, class mapping, mixing, and a run that uses them."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest
from desktop_support import REPO

from model.batches import make_batches
from model.data import TRAIN, DatasetError, load_dataset
from model.ferplus import FERPLUS_TO_FER2013, mix_targets, read_votes
from model.training import TrainConfig, train

COLUMNS = "row,Usage,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def write_votes(path, rows: list[tuple[str, list[int]]]) -> None:
    """``rows``: (Usage, 10 vote counts in FER+ order)."""
    lines = [COLUMNS] + [f"{i},{usage},{','.join(map(str, votes))}" for i, (usage, votes) in enumerate(rows)]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def test_votes_are_mapped_to_fer2013_order_and_normalised_without_contempt_unknown_and_not_a_face(tmp_path):
    path = tmp_path / "votes.csv.gz"
    write_votes(path, [
        ("Training", [0, 6, 0, 0, 0, 0, 0, 2, 1, 1]),  # happiness 6 of 6 emotion votes
        ("PublicTest", [5, 0, 0, 5, 0, 0, 0, 0, 0, 0]),
        ("Training", [2, 0, 2, 0, 4, 0, 0, 0, 2, 0]),  # neutral 2, surprise 2, anger 4
        ("Training", [0, 0, 0, 0, 0, 0, 0, 3, 2, 5]),  # no emotion vote at all
    ])  # fmt: skip
    votes = read_votes(path, "Training")
    assert votes.shape == (3, 7)
    np.testing.assert_allclose(votes[0], np.eye(7)[3])  # Happy
    np.testing.assert_allclose(votes[1], [0.5, 0, 0, 0, 0, 0.25, 0.25])  # Angry, Surprise, Neutral
    np.testing.assert_array_equal(votes[2], np.zeros(7))
    np.testing.assert_allclose(read_votes(path, "PublicTest")[0], [0, 0, 0, 0, 0.5, 0, 0.5])  # Sad, Neutral
    assert sorted(FERPLUS_TO_FER2013.values()) == list(range(7))

    targets = mix_targets(np.array([6, 0, 2]), votes, 0.4)
    np.testing.assert_allclose(targets[0], 0.6 * np.eye(7)[6] + 0.4 * np.eye(7)[3])
    np.testing.assert_allclose(targets[2], np.eye(7)[2])  # no votes: the FER2013 label alone
    np.testing.assert_allclose(targets.sum(1), 1.0, atol=1e-6)
    with pytest.raises(DatasetError, match="same FER2013 file"):
        mix_targets(np.array([6, 0]), votes, 0.4)


def test_a_file_that_is_not_votes_is_refused_with_its_name(tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    with pytest.raises(DatasetError, match=r"votes.csv: not a FER\+ votes file"):
        read_votes(path, "Training")


@pytest.mark.slow
def test_a_run_with_soft_labels_trains_on_the_mixed_targets(tiny_csv, tmp_path):
    train_split = load_dataset(tiny_csv).split(TRAIN)
    rng = np.random.default_rng(0)
    rows = [("Training", list(rng.multinomial(10, [0.1] * 10))) for _ in range(len(train_split))]
    rows += [("PublicTest", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0])] * 28
    votes_path = tmp_path / "votes.csv.gz"
    write_votes(votes_path, rows)
    config = TrainConfig(data=str(tiny_csv), out=str(tmp_path / "run"), epochs=1, batch_size=8, arch="seed",
                         soft_labels=str(votes_path), soft_weight=0.3, augment=False, average_from=0)  # fmt: skip
    _, targets = make_batches(train_split, config)[0]
    order = np.random.default_rng((config.seed, 0)).permutation(len(train_split))[:8]
    expected = mix_targets(train_split.y, read_votes(votes_path, TRAIN), 0.3)[order]
    np.testing.assert_allclose(targets, expected, atol=1e-6)
    assert not np.allclose(targets, np.eye(7)[train_split.y[order]])
    assert train(config).best_model.exists()

    short = tmp_path / "short.csv.gz"
    write_votes(short, rows[:10])
    done = subprocess.run(
        [sys.executable, str(REPO / "train_emotion.py"), "train", "--data", str(tiny_csv), "--out",
         str(tmp_path / "bad"), "--epochs", "1", "--arch", "seed", "--soft-labels", str(short)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "error: the FER+ votes have 10 rows" in done.stderr
    assert "Traceback" not in done.stderr
