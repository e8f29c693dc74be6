"""The data loaders: FER2013 CSV (plain/gz) and image folders, and every bad-input case."""

from __future__ import annotations

import gzip

import cv2
import numpy as np
import pytest
from conftest import FER2013, synthetic_faces, write_fer_csv

from model.data import DatasetError, load_dataset, stratified_split, train_val_splits
from model.preprocess import face_to_input
from model.spec import LABEL_KEYS

PIX = " ".join(["7"] * 2304)


def test_csv_split_by_usage_column_not_row_order(tmp_path):
    x, y = synthetic_faces(2)
    usage = ["PublicTest" if i % 3 == 0 else "Training" for i in range(len(y))]
    ds = load_dataset(write_fer_csv(tmp_path / "f.csv", x, y, usage))
    pub = [i for i, u in enumerate(usage) if u == "PublicTest"]
    assert len(ds.split("PublicTest")) == len(pub)
    np.testing.assert_array_equal(ds.split("PublicTest").y, y[pub])
    expected = np.stack([face_to_input(face) for face in x[pub]])  # each row as the app would see that face
    np.testing.assert_array_equal(ds.split("PublicTest").x, expected)
    assert ds.split("Training").x.dtype == np.uint8 and ds.split("Training").x.shape[1:] == (48, 48, 1)


def test_gzip_csv_reads_like_plain(tmp_path):
    x, y = synthetic_faces(1)
    plain = write_fer_csv(tmp_path / "f.csv", x, y, ["Training"] * len(y))
    gz = tmp_path / "f.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = load_dataset(plain).split("Training"), load_dataset(gz).split("Training")
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)


def test_csv_without_usage_is_split_stratified_and_seeded(tmp_path):
    x, y = synthetic_faces(10)
    ds = load_dataset(write_fer_csv(tmp_path / "f.csv", x, y))
    assert list(ds.splits) == ["Training"]
    train, val, how = train_val_splits(ds, val_fraction=0.2, seed=3)
    assert "stratified" in how
    assert np.bincount(val.y).tolist() == [2] * 7  # 20 % of every class
    assert len(train) + len(val) == len(y)
    _, val2, _ = train_val_splits(ds, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(val.x, val2.x)
    _, val3, _ = train_val_splits(ds, val_fraction=0.2, seed=4)
    assert not np.array_equal(val.x, val3.x)


def test_stratified_split_rejects_bad_fraction(tmp_path):
    x, y = synthetic_faces(2)
    ds = load_dataset(write_fer_csv(tmp_path / "f.csv", x, y))
    with pytest.raises(ValueError):
        stratified_split(ds.split("Training"), 1.5, 0)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (f"emotion,pixels,Usage\n3,{PIX},Training\n3,1 2 3,Training\n", "line 3: expected 2304 pixel values"),
        (f"emotion,pixels,Usage\n3,{PIX.replace('7', 'x', 1)},Training\n", "line 2: pixel values must be integers"),
        (f"emotion,pixels,Usage\n3,{PIX.replace('7', '300', 1)},Training\n", "line 2: pixel values must be integers"),
        (f"emotion,pixels,Usage\n9,{PIX},Training\n", "line 2: emotion 9 is outside 0-6"),
        (f"emotion,pixels,Usage\nhappy,{PIX},Training\n", "line 2: emotion 'happy' is not an integer"),
        (f"emotion,pixels,Usage\n3,{PIX},Nonsense\n", "line 2: unknown Usage 'Nonsense'"),
        (f"label,pixels\n3,{PIX}\n", "missing column 'emotion'"),
        ("emotion,Usage\n3,Training\n", "missing column 'pixels'"),
        ("", "the file is empty"),
        ("emotion,pixels,Usage\n", "no usable rows"),
    ],
)
def test_bad_csv_names_file_and_line(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_skip_bad_skips_and_counts(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(f"emotion,pixels,Usage\n3,{PIX},Training\n3,1 2,Training\n8,{PIX},Training\n0,{PIX},PublicTest\n")
    ds = load_dataset(path, skip_bad=True)
    assert ds.skipped == 2
    assert len(ds.split("Training")) == 1 and len(ds.split("PublicTest")) == 1
    assert "line 3" in ds.skipped_examples[0]


def test_corrupt_gzip_and_missing_file(tmp_path):
    bad = tmp_path / "broken.csv.gz"
    rows = "".join(f"{i % 7},{' '.join(str((i * j) % 256) for j in range(2304))}\n" for i in range(50))
    whole = gzip.compress(("emotion,pixels\n" + rows).encode())
    bad.write_bytes(whole[: len(whole) // 2])  # a download cut short
    with pytest.raises(DatasetError, match="not a valid gzip file"):
        load_dataset(bad)
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nope.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\x00\xff")
    with pytest.raises(DatasetError, match="not a text CSV"):
        load_dataset(binary)


def _write_folder(root, split_names=("train", "test"), classes=LABEL_KEYS, n=2, size=(64, 80)):
    rng = np.random.default_rng(0)
    for split in split_names:
        for name in classes:
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
                cv2.imwrite(str(d / f"{i}.png"), img)
    return root


def test_image_folder_label_order_pinned_by_name(tmp_path):
    # Capitalised, created in reverse order: labels must still follow FER2013's order.
    root = _write_folder(tmp_path / "faces", classes=[k.capitalize() for k in reversed(LABEL_KEYS)], n=1)
    ds = load_dataset(root)
    assert sorted(ds.splits) == ["PublicTest", "Training"]
    train = ds.split("Training")
    for name in LABEL_KEYS:
        label = LABEL_KEYS.index(name)
        img = cv2.imread(str(root / "train" / name.capitalize() / "0.png"), cv2.IMREAD_UNCHANGED)
        i = int(np.flatnonzero(train.y == label)[0])
        np.testing.assert_array_equal(train.x[i], face_to_input(img))
    assert ds.summary()["Training"]["Neutral"] == 1


def test_image_folder_without_split_level_and_partial_classes(tmp_path):
    root = tmp_path / "mine"
    for name in ("happy", "sad"):
        (root / name).mkdir(parents=True)
        cv2.imwrite(str(root / name / "a.jpg"), np.full((30, 30), 100, np.uint8))
    ds = load_dataset(root)
    assert ds.split("Training").class_counts() == [0, 0, 0, 1, 1, 0, 0]


def test_image_folder_errors(tmp_path):
    root = _write_folder(tmp_path / "a", classes=["happy", "grumpy"], n=1)
    with pytest.raises(DatasetError, match="unknown class folder 'grumpy'"):
        load_dataset(root)
    ds = load_dataset(root, skip_bad=True)
    assert ds.skipped == 2 and len(ds.split("Training")) == 1

    root = _write_folder(tmp_path / "b", classes=["happy"], n=1)
    (root / "train" / "happy" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"broken\.png: cannot read this image"):
        load_dataset(root)
    assert load_dataset(root, skip_bad=True).skipped == 1

    (tmp_path / "c" / "misc").mkdir(parents=True)
    with pytest.raises(DatasetError, match="unknown folder 'misc'"):
        load_dataset(tmp_path / "c")
    (tmp_path / "d").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset(tmp_path / "d")


@pytest.mark.fer2013
@pytest.mark.skipif(not FER2013.exists(), reason=f"FER2013 not found at {FER2013} (shared data is not on this machine)")
def test_real_fer2013_splits_match_its_readme():
    ds = load_dataset(FER2013)
    assert sorted(ds.splits) == ["PublicTest", "Training"]
    assert ds.split("Training").class_counts() == [3969, 435, 4079, 7186, 4796, 3161, 4932]
    assert ds.split("PublicTest").class_counts() == [466, 56, 496, 891, 652, 414, 604]
    assert ds.skipped == 0


def test_counting_faces_checks_every_row_like_loading_but_keeps_none(tmp_path):
    """The Retrain dialog's check: the same counts and the same errors as loading, in flat memory."""
    import tracemalloc

    from model.data import count_faces

    x, y = synthetic_faces(300)  # 2,100 faces: 4.8 MB once loaded
    usage = ["PublicTest" if i % 5 == 0 else "Training" for i in range(len(y))]
    csv_path = write_fer_csv(tmp_path / "f.csv", x, y, usage)
    tracemalloc.start()
    counts = count_faces(csv_path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert counts == load_dataset(csv_path).summary()
    assert peak < 2_000_000, peak
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels\n3," + " ".join(["7"] * 2304) + "\n9," + " ".join(["7"] * 2304) + "\n")
    with pytest.raises(DatasetError, match="line 3: emotion 9"):
        count_faces(bad)
