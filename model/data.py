"""Loading labelled faces: FER2013-style CSV files and image folders.

Both loaders return a :class:`Dataset` of named splits holding model inputs, ``uint8``
faces of shape (N, 48, 48, 1), and ``int64`` labels in :data:`model.spec.LABELS` order.
Every face, a CSV row or an image file, goes through :func:`model.preprocess.face_to_input`,
the same function the app uses, so training and serving see identical tensors.

Bad input raises :class:`DatasetError` with a message that names the file and, for a
CSV, the line. With ``skip_bad=True`` bad rows and images are skipped and counted.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from model.preprocess import face_to_input
from model.spec import INPUT_SIZE, LABEL_KEYS, LABELS, NUM_CLASSES

log = logging.getLogger(__name__)

TRAIN, VAL, TEST = "Training", "PublicTest", "PrivateTest"

#: Accepted spellings of split names (CSV ``Usage`` values and folder names).
SPLIT_ALIASES: dict[str, str] = {
    "training": TRAIN, "train": TRAIN,
    "publictest": VAL, "val": VAL, "valid": VAL, "validation": VAL, "test": VAL,
    "privatetest": TEST,
}  # fmt: skip

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
PIXELS = INPUT_SIZE * INPUT_SIZE


#: (split name, label index, image as stored)
LabelledImage = tuple[str, int, np.ndarray]
LabelledPath = tuple[str, int, Path]


class DatasetError(Exception):
    """A data set that cannot be used, with a message a user can act on."""


@dataclass(frozen=True)
class Split:
    """Faces (N, 48, 48, 1) ``uint8`` and their labels (N,) ``int64``."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def class_counts(self) -> list[int]:
        return np.bincount(self.y, minlength=NUM_CLASSES).tolist()


@dataclass(frozen=True)
class Dataset:
    """Named splits of one source, plus how many bad rows or images were skipped."""

    source: Path
    splits: dict[str, Split]
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)

    def split(self, name: str) -> Split:
        key = canonical_split(name)
        if key not in self.splits:
            raise DatasetError(f"{self.source}: no {name!r} split (found: {', '.join(self.splits) or 'none'})")
        return self.splits[key]

    def summary(self) -> dict[str, dict[str, int]]:
        """Faces per class per split, by label name."""
        return {name: dict(zip(LABELS, s.class_counts(), strict=True)) for name, s in self.splits.items()}


def canonical_split(name: str) -> str:
    return SPLIT_ALIASES.get(name.strip().lower(), name)


def load_dataset(path: str | Path, *, skip_bad: bool = False) -> Dataset:
    """Load a FER2013-style CSV (plain or ``.gz``) or an image folder, every face as the model's input."""
    path = Path(path).expanduser()
    bad: list[str] = []
    xs: dict[str, list[np.ndarray]] = {}
    ys: dict[str, list[int]] = {}
    for split, label, image in iter_images(path, skip_bad=skip_bad, bad=bad):
        xs.setdefault(split, []).append(face_to_input(image))
        ys.setdefault(split, []).append(label)
    if not ys:
        what = "no usable rows" if path.is_file() else f"no images found (expected {path}/train/<emotion>/*.png)"
        raise DatasetError(f"{path}: {what}" + (f" ({len(bad)} bad rows skipped)" if bad else ""))
    splits = {name: Split(np.stack(xs[name]), np.asarray(ys[name], np.int64)) for name in ys}
    _report_skipped(path, bad)
    return Dataset(path, splits, len(bad), bad[:10])


def count_faces(path: str | Path) -> dict[str, dict[str, int]]:
    """Faces per class per split, checking every row and image as :func:`load_dataset` does, without keeping them.

    The Retrain dialog's check: it runs in the app's process, where holding a whole data set
    (FER2013: ~75 MB of faces) only to count it is memory the app never gets back.
    """
    counts: dict[str, list[int]] = {}
    for split, label, _ in iter_images(path):
        counts.setdefault(split, [0] * NUM_CLASSES)[label] += 1
    if not counts:
        raise DatasetError(f"{path}: no usable rows or images")
    return {split: dict(zip(LABELS, c, strict=True)) for split, c in counts.items()}


def iter_images(
    path: str | Path, *, skip_bad: bool = False, bad: list[str] | None = None, photos: bool = False
) -> Iterator[LabelledImage]:
    """Every labelled image of a CSV or an image folder as stored: (split, label, image).

    A CSV row is its 48x48 grey face; a file is the image as decoded (any size, grey or colour).
    Bad rows and images raise :class:`DatasetError`, or with ``skip_bad`` are described in ``bad``.
    ``evaluate --detect`` uses this to find faces the way the app does; training uses
    :func:`load_dataset`, which puts each image through :func:`face_to_input`. ``photos`` (``train
    --detect``) decodes files in colour turned as their EXIF tag says, as the app opens a photo: a phone's
    portrait photo is stored on its side.
    """
    path = Path(path).expanduser()
    bad = [] if bad is None else bad
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_dir():
        yield from _folder_images(path, skip_bad, bad, cv2.IMREAD_COLOR if photos else cv2.IMREAD_UNCHANGED)
    else:
        yield from _csv_rows(path, skip_bad, bad)


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _csv_rows(path: Path, skip_bad: bool, bad: list[str]) -> Iterator[LabelledImage]:
    """``emotion,pixels[,Usage]`` rows, split by ``Usage`` when the column is there.

    Rows without a ``Usage`` column all go to the ``Training`` split; the trainer then
    holds out a seeded stratified fraction for validation (:func:`stratified_split`).
    """
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: the file is empty")
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path}: the file is empty")
            columns = [c.strip().lower() for c in header]
            for needed in ("emotion", "pixels"):
                if needed not in columns:
                    raise DatasetError(
                        f"{path}: line 1: missing column {needed!r} (the header must be emotion,pixels[,Usage];"
                        f" found {','.join(header)})"
                    )
            i_emotion, i_pixels = columns.index("emotion"), columns.index("pixels")
            i_usage = columns.index("usage") if "usage" in columns else None
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                try:
                    label, face, usage = _parse_row(row, i_emotion, i_pixels, i_usage)
                except ValueError as exc:
                    message = f"{path}: line {reader.line_num}: {exc}"
                    if not skip_bad:
                        raise DatasetError(message) from None
                    bad.append(message)
                    continue
                yield usage, label, face
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: not a valid gzip file ({exc})") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a text CSV file (cannot decode it as UTF-8)") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV ({exc})") from None


def _parse_row(row: list[str], i_emotion: int, i_pixels: int, i_usage: int | None) -> tuple[int, np.ndarray, str]:
    needed = max(i_emotion, i_pixels, i_usage if i_usage is not None else 0)
    if len(row) <= needed:
        raise ValueError(f"expected at least {needed + 1} fields, found {len(row)}")
    try:
        label = int(row[i_emotion])
    except ValueError:
        raise ValueError(f"emotion {row[i_emotion]!r} is not an integer 0-6") from None
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"emotion {label} is outside 0-{NUM_CLASSES - 1}")
    values = row[i_pixels].split()
    if len(values) != PIXELS:
        raise ValueError(f"expected {PIXELS} pixel values (48x48), found {len(values)}")
    try:
        pixels = np.asarray(values, dtype=np.int32)
    except ValueError:
        raise ValueError("pixel values must be integers 0-255") from None
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("pixel values must be integers 0-255")
    usage = TRAIN
    if i_usage is not None:
        raw = row[i_usage].strip()
        if raw.lower() not in SPLIT_ALIASES:
            raise ValueError(f"unknown Usage {raw!r} (expected Training, PublicTest or PrivateTest)")
        usage = SPLIT_ALIASES[raw.lower()]
    return label, pixels.astype(np.uint8).reshape(INPUT_SIZE, INPUT_SIZE), usage


def _iter_images(folder: Path) -> Iterator[Path]:
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            yield p


def folder_image_paths(root: Path, skip_bad: bool = False, bad: list[str] | None = None) -> Iterator[LabelledPath]:
    """Every labelled image file of ``ROOT/{train,test}/<emotion>/*.png|jpg`` (or ``ROOT/<emotion>/*`` for one
    split), as (split, label, path), in the order they are read; nothing is decoded.

    Class folders are matched to labels by name (``angry`` ... ``neutral``, any case), so
    the label order is FER2013's whatever the folders sort to.
    """
    bad = [] if bad is None else bad
    subdirs = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    if not subdirs:
        raise DatasetError(
            f"{root}: no class folders (expected {root}/<emotion>/*.png or {root}/train/<emotion>/*.png, "
            f"emotions: {', '.join(LABEL_KEYS)})"
        )
    if all(d.name.lower() in LABEL_KEYS for d in subdirs):
        split_dirs = {TRAIN: root}
    else:
        split_dirs = {}
        for d in subdirs:
            if d.name.lower() not in SPLIT_ALIASES:
                raise DatasetError(
                    f"{d}: unknown folder {d.name!r}; expected split folders (train, test) holding emotion folders"
                    f" ({', '.join(LABEL_KEYS)})"
                )
            split_dirs[SPLIT_ALIASES[d.name.lower()]] = d
    for split_name, split_dir in split_dirs.items():
        for class_dir in sorted(d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")):
            key = class_dir.name.lower()
            if key not in LABEL_KEYS:
                message = f"{class_dir}: unknown class folder {class_dir.name!r} (expected {', '.join(LABEL_KEYS)})"
                if not skip_bad:
                    raise DatasetError(message)
                bad.append(message)
                continue
            label = LABEL_KEYS.index(key)
            for image_path in _iter_images(class_dir):
                yield split_name, label, image_path


def _folder_images(root: Path, skip_bad: bool, bad: list[str], flags: int) -> Iterator[LabelledImage]:
    """Each of :func:`folder_image_paths` decoded with ``flags``: images of any size or colour are whole-image
    face crops."""
    for split_name, label, image_path in folder_image_paths(root, skip_bad, bad):
        image = cv2.imread(str(image_path), flags)
        if image is None or image.size == 0:
            message = f"{image_path}: cannot read this image (corrupt or unsupported format)"
            if not skip_bad:
                raise DatasetError(message)
            bad.append(message)
            continue
        yield split_name, label, image


def _report_skipped(source: Path, bad: list[str]) -> None:
    if bad:
        log.warning("%s: skipped %d bad rows/images; first: %s", source, len(bad), bad[0])


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Hold out ``fraction`` of each class (at least one face of a class with two or more)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("the validation fraction must be between 0 and 1")
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for label in range(NUM_CLASSES):
        idx = np.flatnonzero(split.y == label)
        if len(idx) < 2:
            continue
        rng.shuffle(idx)
        held.append(idx[: max(1, round(len(idx) * fraction))])
    val_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    mask = np.ones(len(split), bool)
    mask[val_idx] = False
    return Split(split.x[mask], split.y[mask]), Split(split.x[val_idx], split.y[val_idx])


def train_val_splits(dataset: Dataset, *, val_fraction: float = 0.1, seed: int = 0) -> tuple[Split, Split, str]:
    """The training split and the validation split, and how the latter was chosen.

    Validation is the ``PublicTest`` split (a folder's ``test/``) when there is one,
    else a seeded stratified ``val_fraction`` of ``Training``. ``PrivateTest`` is never used.
    """
    train = dataset.split(TRAIN)
    if VAL in dataset.splits:
        return train, dataset.splits[VAL], VAL
    train, val = stratified_split(train, val_fraction, seed)
    return train, val, f"{val_fraction:g} of {TRAIN} (stratified, seed {seed})"
