#!/usr/bin/env python3
"""Train and evaluate Emotion Lens models.

    python train_emotion.py train --data fer2013.csv.gz --epochs 60
    python train_emotion.py train --resume RUN_DIR
    python train_emotion.py evaluate --data fer2013.csv.gz            # what the app runs by default
    python train_emotion.py export --model RUN_DIR/best.keras          # its LiteRT twin, for the app

The app's Retrain button runs the same ``train`` command with ``--progress-jsonl -``, and the app
runs ``export`` in a child process for a model that has no current LiteRT twin.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import zipfile
from pathlib import Path
from typing import IO

# Before TensorFlow is imported: oneDNN is 1.4-1.9x faster on this class of CPU, and TF's
# INFO logs are noise to a user (the lines it prints before its logging starts: model.chatter).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np

from model.checkpoint import SHIPPED_MODEL, ModelLoadError, check_metadata
from model.data import Dataset, DatasetError, load_dataset
from model.engine import DEVICES, DeviceError
from model.events import Event
from model.litert import LiteRTError
from model.precision import PRECISIONS
from model.spec import INPUT_SHAPE, LABELS

log = logging.getLogger("train_emotion")

ImagesAndLabels = tuple[list[np.ndarray], np.ndarray]  # one split's images as stored, and their labels


def build_parser(prog: str = "train_emotion.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    from model.training import TrainConfig

    d = TrainConfig(data="", out="")  # the defaults live there, once

    t = sub.add_parser(
        "train",
        help="train a model (or resume a run)",
        description="Train a model on a FER2013-style CSV or an image folder. Every epoch writes "
        "last.keras (resumable) and, when validation accuracy improves, best.keras.",
    )
    t.add_argument(
        "--data",
        help="FER2013-style CSV (emotion,pixels[,Usage]; plain or .gz) or image folder "
        "ROOT/{train,test}/<emotion>/*.png",
    )
    t.add_argument("--out", type=Path, help="run folder (default: a new time-stamped folder under the user data dir)")
    t.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the run in DIR where it stopped; its saved settings are used, except --epochs and "
        "--average-from when given (the learning-rate schedule stays the one it started with: epochs added "
        "beyond it run at its final rate)",
    )
    t.add_argument("--epochs", type=int, help=f"number of epochs (default {d.epochs})")
    t.add_argument("--batch-size", type=int, default=d.batch_size, help="faces per training step (default %(default)s)")
    from model.network import ARCHITECTURES

    t.add_argument("--arch", default=d.arch, choices=sorted(ARCHITECTURES), help="architecture (default %(default)s)")
    t.add_argument("--init", metavar="MODEL.keras", help="fine-tune from this model instead of starting from scratch")
    t.add_argument(
        "--optimizer",
        default=d.optimizer,
        choices=["sgd", "adamw"],
        help="SGD with Nesterov momentum 0.9, or AdamW (default %(default)s)",
    )
    t.add_argument(
        "--lr",
        type=float,
        help="peak learning rate of the cosine schedule (default 0.01 SGD / 0.001 AdamW, a fifth of that with --init)",
    )
    t.add_argument(
        "--warmup-epochs",
        type=float,
        default=d.warmup_epochs,
        help="linear warm-up before the cosine decay (default %(default)s)",
    )
    t.add_argument("--weight-decay", type=float, default=d.weight_decay, help="L2 weight decay (default %(default)s)")
    t.add_argument(
        "--label-smoothing", type=float, default=d.label_smoothing, help="label smoothing (default %(default)s)"
    )
    t.add_argument("--class-weight", action="store_true", help="weight classes by inverse frequency")
    t.add_argument(
        "--no-augment",
        dest="augment",
        action="store_false",
        help="turn off on-the-fly augmentation (flip, shift, zoom, rotation)",
    )
    t.add_argument(
        "--erasing",
        type=float,
        default=d.erasing,
        metavar="P",
        help="also hide a random rectangle of this fraction of the training faces with noise (random erasing; "
        "default %(default)s)",
    )
    t.add_argument(
        "--scale",
        type=float,
        nargs=2,
        default=d.scale,
        metavar=("LOW", "HIGH"),
        help="range of the augmentation's zoom factor; below 1 the face gets smaller in its crop, as in looser "
        "crops than FER2013's (default %(default)s)",
    )
    t.add_argument(
        "--degrade",
        type=float,
        default=d.degrade,
        metavar="P",
        help="also give this fraction of the training faces one fault of a real camera: low resolution, blur, "
        "sensor noise or JPEG compression (default %(default)s)",
    )
    t.add_argument(
        "--patience",
        type=int,
        default=d.patience,
        help="stop after this many epochs without a better validation accuracy (default %(default)s; 0: never)",
    )
    t.add_argument(
        "--val-fraction",
        type=float,
        default=d.val_fraction,
        help="validation fraction when the data has no PublicTest/test split (default %(default)s)",
    )
    t.add_argument(
        "--average-from",
        type=int,
        metavar="EPOCH",
        help="average the weights of every epoch from EPOCH on (stochastic weight averaging); at the end the "
        "average, with batch-norm statistics measured again on the training faces, becomes best.keras if it "
        "scores higher (default: the middle epoch, epochs/2+1; 0 turns it off)",
    )
    t.add_argument(
        "--teacher",
        action="append",
        default=[],
        metavar="MODEL.keras",
        help="distil from this model (repeat for an ensemble): part of each training target becomes the "
        "teachers' mean flip-averaged probabilities for that face; or another run's teacher.npy on the same "
        "data, whose targets are taken as they are",
    )
    t.add_argument(
        "--teacher-weight",
        type=float,
        default=d.teacher_weight,
        help="the teachers' share of each target, the true label's is the rest (default %(default)s)",
    )
    t.add_argument(
        "--soft-labels",
        metavar="VOTES.csv.gz",
        help="FER+ crowd votes for the rows of a FER2013 --data file (ferplus_votes.csv.gz): part of each "
        "training target becomes the annotators' vote shares for that face",
    )
    t.add_argument(
        "--soft-weight",
        type=float,
        default=d.soft_weight,
        help="the votes' share of each target with --soft-labels, the FER2013 label's is the rest "
        "(default %(default)s)",
    )
    t.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help="what training computes in: auto (bfloat16 on a CPU with bfloat16 instructions, about 1.2-1.4x "
        "faster; float16 on a GPU), float32, or bfloat16; saved models are float32 either way "
        "(default %(default)s)",
    )
    t.add_argument("--seed", type=int, default=d.seed, help="seed for shuffling, augmentation and initialisation")
    t.add_argument("--skip-bad", action="store_true", help="skip malformed rows/images instead of stopping")
    t.add_argument(
        "--detect",
        action="store_true",
        help="the images are photos, not face crops: train on each one's largest face, found with the app's "
        "detector and cut as the app cuts it (images without a face are left out and counted)",
    )
    t.add_argument(
        "--compare",
        metavar="MODEL.keras",
        help="at the end, also evaluate this model (e.g. the one in use) on the same validation split",
    )
    t.add_argument("--progress-jsonl", metavar="FILE|-", help="also write one JSON object per event to FILE or stdout")

    e = sub.add_parser(
        "evaluate",
        help="evaluate a model on a data set",
        description="Print accuracy, macro-F1, per-class precision/recall and the confusion matrix; "
        "the last stdout line is the same as one JSON object.",
    )
    e.add_argument(
        "--model", default=str(SHIPPED_MODEL), help="model file (default: the shipped model, run as the app runs it)"
    )
    e.add_argument("--data", required=True, help="CSV or image folder, as for train")
    e.add_argument(
        "--usage",
        default="PublicTest",
        help="split to evaluate: Training, PublicTest (a folder's test/) or PrivateTest (default PublicTest)",
    )
    e.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average with the mirrored face (default: as the model's metadata says)",
    )
    e.add_argument("--skip-bad", action="store_true", help="skip malformed rows/images instead of stopping")
    e.add_argument(
        "--detect",
        action="store_true",
        help="find each image's largest face with the app's face detector (the image set in a border, as a face "
        "in a camera frame) and cut it as the app does; images without a face count as wrong (default: each "
        "image or row is taken as a face crop)",
    )
    e.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where the model runs, as in the app: LiteRT on the CPU, TensorFlow on a GPU (default: auto)",
    )

    x = sub.add_parser(
        "export",
        help="write a model's LiteRT twin (.tflite), which the app runs on the CPU",
        description="Convert a .keras model to LiteRT, check its outputs against Keras, and write it "
        "atomically (default: beside the model, recorded in its metadata).",
    )
    x.add_argument("--model", required=True, help="the .keras model file")
    x.add_argument("--out", type=Path, help="where to write the .tflite (default: MODEL with .tflite)")

    w = sub.add_parser(
        "explain",
        help="show which parts of each face in an image drove the model's label",
        description="Find the faces in an image as the app does (or take the whole image as one face crop when "
        "none is found) and write one picture per face: the face as the model saw it, an occlusion-sensitivity "
        "heat map of the parts that pushed its top emotion up, and its bars. The last stdout line is JSON.",
    )
    w.add_argument(
        "--model", default=str(SHIPPED_MODEL), help="model file (default: the shipped model, run as the app runs it)"
    )
    w.add_argument("--image", type=Path, required=True, help="a photo, a frame or a face crop")
    w.add_argument("--out", type=Path, default=Path("."), help="folder for the pictures (default: the current one)")
    w.add_argument("--device", choices=DEVICES, default="auto", help="where the model runs (default: auto)")
    return parser


class JsonlWriter:
    def __init__(self, target: str) -> None:
        self.stream: IO[str] = sys.stdout if target == "-" else open(target, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def __call__(self, event: Event) -> None:
        self.stream.write(event.to_json() + "\n")
        self.stream.flush()


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from model import events as ev
    from model.progress import ProgressPrinter
    from model.rundir import RunDir
    from model.training import TrainConfig, check_inputs, read_config, train
    from model.userdata import runs_dir

    jsonl = JsonlWriter(args.progress_jsonl) if args.progress_jsonl else None
    # With the events on stdout a program is reading them (the Retrain dialog) and words them itself:
    # the same progress in words on stderr would show twice.
    printer = ProgressPrinter(sys.stderr) if args.progress_jsonl != "-" else None

    def emit(event: ev.Event) -> None:
        if printer:
            printer(event)
        if jsonl:
            jsonl(event)

    try:
        if args.resume:
            config = read_config(args.resume)
            if args.epochs is not None:
                config.epochs = args.epochs
            if args.average_from is not None:
                config.average_from = args.average_from
            config.out = str(args.resume)
        else:
            if not args.data:
                parser.error("train needs --data (or --resume DIR)")
            out = args.out or RunDir.new(runs_dir()).path
            if RunDir(out).state.exists():
                raise FileExistsError(f"{out} already holds a run; use --resume {out} or another --out")
            config = TrainConfig(
                data=str(Path(args.data).expanduser().resolve()), out=str(out),
                epochs=TrainConfig.epochs if args.epochs is None else args.epochs, batch_size=args.batch_size,
                arch=args.arch, optimizer=args.optimizer, lr=args.lr,
                warmup_epochs=args.warmup_epochs, weight_decay=args.weight_decay,
                label_smoothing=args.label_smoothing, class_weight=args.class_weight, augment=args.augment,
                erasing=args.erasing, scale=tuple(args.scale), degrade=args.degrade,
                patience=args.patience, val_fraction=args.val_fraction, seed=args.seed,
                init=str(Path(args.init).resolve()) if args.init else None, skip_bad=args.skip_bad,
                average_from=args.average_from,
                teacher=[str(Path(m).resolve()) for m in args.teacher], teacher_weight=args.teacher_weight,
                soft_labels=str(Path(args.soft_labels).expanduser().resolve()) if args.soft_labels else None,
                soft_weight=args.soft_weight, precision=args.precision, detect=args.detect,
            )  # fmt: skip
        if args.resume and args.detect and not config.detect:
            raise ValueError(f"--detect: {args.resume} was started on the images as they are; start a new run")
        check_inputs(config, resume=bool(args.resume), compare=args.compare)  # before minutes of detection
        with RunDir(config.out).hold():  # before minutes of detection: one trainer per run folder
            dataset = None
            if config.detect:
                dataset = detected_dataset(config.data, skip_bad=config.skip_bad, cache=RunDir(config.out).faces)
            train(config, resume=bool(args.resume), emit=emit, compare=args.compare, dataset=dataset)
    except (DatasetError, ModelLoadError, FileNotFoundError, FileExistsError, ValueError) as exc:
        if jsonl:
            jsonl(ev.Error(str(exc)))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if jsonl:
            jsonl(ev.Cancelled(None, None, "interrupted"))
        print("interrupted: resume with --resume", file=sys.stderr)
        return 130
    return 0


def _split_name(requested: str) -> str:
    """``--usage`` as the data calls it; a typo is refused, not taken for a folder's only split."""
    from model.data import SPLIT_ALIASES, canonical_split

    usage = canonical_split(requested)
    if usage not in SPLIT_ALIASES.values():
        raise DatasetError(f"--usage {requested}: not a split (Training, PublicTest or PrivateTest)")
    return usage


def _choose_split(available: list[str], requested: str, data: str) -> str:
    usage = _split_name(requested)
    if usage not in available and len(available) == 1:
        # The only split of an unsplit folder or CSV is called Training, which is not what is scored here.
        log.warning("%s has no %s split; scoring all of it", data, requested)
        return available[0]
    if usage not in available:
        raise DatasetError(f"{data}: no {requested!r} split (found: {', '.join(available) or 'none'})")
    return usage


class FaceFinder:
    """One image's largest face, found by the app's detector and cut as the app cuts it (``--detect``).

    The images are face crops, the detector is made for camera frames. So each image is shown to it
    as a face would appear in a frame: an image whose shorter side is under twice the smallest face
    the app looks for (a 48x48 FER2013 row) is first enlarged by a whole factor to at least 4x that,
    and every image is set in a border of a quarter of its size (edge pixels repeated), since Haar
    cannot find a face that touches the image's edge. Measured with the shipped model: faces found in
    85 -> 95 % of faces-in-the-wild and 56 -> 75 % of FER2013 PublicTest with the border.

    ``photos`` (``train --detect``): the largest face of the first look that finds one, not of every look, in
    the photo shrunk to a shorter side of at most 20 times the app's smallest face (960 pixels), so no face
    under a twentieth of that side. A 1920x1080 photo then costs one scan, not eight, and a 4000x3000 one is
    scanned at a sixth of its size; the face cut is still at least the app's smallest, far above 48x48.
    """

    def __init__(self, photos: bool = False) -> None:
        from desktop.core.detector import FaceDetector
        from desktop.core.pipeline import PipelineConfig

        self.config = PipelineConfig()
        self.detector = FaceDetector(self.config.detector)
        self.photos = photos

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        from model.preprocess import faces_to_batch, to_gray

        least = self.config.detector.min_face_size
        gray = to_gray(image)
        if min(gray.shape) < 2 * least:
            factor = -(-4 * least // min(gray.shape))
            gray = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
        elif self.photos and min(gray.shape) > 20 * least:
            scale = 20 * least / min(gray.shape)
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        border = max(gray.shape) // 4
        gray = cv2.copyMakeBorder(gray, border, border, border, border, cv2.BORDER_REPLICATE)
        boxes = self.detector.detect_first(gray) if self.photos else self.detector.detect(gray)  # largest first
        return faces_to_batch(gray, boxes[:1], self.config.margin)[0] if boxes else None


def detect_faces(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each image's largest face (:class:`FaceFinder`), and which images had one: ``evaluate --detect``."""
    find = FaceFinder()
    faces = [find(image) for image in images]
    found = np.array([face is not None for face in faces], bool)
    return np.asarray([f for f in faces if f is not None], np.float32).reshape(-1, *INPUT_SHAPE), found


def images_by_split(data: str | Path, *, skip_bad: bool) -> tuple[dict[str, ImagesAndLabels], list[str]]:
    """Every image of ``data`` as stored, with its label, by split; and the bad ones skipped (``skip_bad``)."""
    from model.data import iter_images

    bad: list[str] = []
    by_split: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    for split_name, label, image in iter_images(data, skip_bad=skip_bad, bad=bad):
        images, labels = by_split.setdefault(split_name, ([], []))
        images.append(image)
        labels.append(label)
    return {name: (images, np.asarray(labels, np.int64)) for name, (images, labels) in by_split.items()}, bad


def detected_dataset(data: str | Path, *, skip_bad: bool, cache: Path | None = None) -> Dataset:
    """``train --detect``: the face of each photo, found and cut as the app does (:class:`FaceFinder`).

    For photos rather than face crops (a user's own pictures): trained on whole photos, the model would learn
    faces far smaller in their crop than the app ever shows it. Photos are read one at a time and only their
    48x48 face is kept (1,000 phone photos decoded at once would be ~36 GB). Photos without a face are left
    out and counted; a split that keeps none is an error, not a validation split silently replaced.

    ``cache`` (the run's ``faces.npz``) keeps the faces found, so a resumed run reads them instead of looking
    again (~10 minutes per 1,000 photos); it is used only while the folder's files are the ones it was made
    from (names, sizes and times).
    """
    photos = _photos_id(Path(data), skip_bad) if cache is not None else ""  # a walk of the folder: only to cache
    found = _read_faces(cache, photos, data) if cache is not None else None
    if found is None:
        found = _find_faces(data, skip_bad=skip_bad)
        if cache is not None:
            _write_faces(cache, photos, *found)
    dataset, looked = found
    for name, count in looked.items():
        if (kept := len(dataset.split(name))) < count:
            log.warning("%s [%s]: no face found in %d of %d images; they are left out", data, name, count - kept, count)
    return dataset


def _photos_id(data: Path, skip_bad: bool) -> str:
    """The images the trainer reads, as they are now: one added, removed or edited gives another id (other files,
    such as a ``.DS_Store`` the system rewrites, do not count)."""
    from model.data import folder_image_paths

    digest = hashlib.sha256(f"skip_bad={skip_bad}".encode())
    paths = [data] if data.is_file() else [path for _, _, path in folder_image_paths(data, skip_bad)]
    for path in paths:
        stat = path.stat()
        name = path.name if path == data else path.relative_to(data).as_posix()
        digest.update(f"\0{name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _read_faces(cache: Path, photos: str, data: str | Path) -> tuple[Dataset, dict[str, int]] | None:
    """The faces found before for these very photos and how many photos each split had, or None (none kept,
    other photos, or unreadable)."""
    from model.data import Split

    if not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as saved:
            if str(saved["photos"]) != photos:
                log.info("%s: the photos have changed since their faces were found; looking again", data)
                return None
            names = [str(n) for n in saved["splits"]]
            splits = {n: Split(saved[f"x_{i}"], saved[f"y_{i}"]) for i, n in enumerate(names)}
            looked = dict(zip(names, saved["looked"].tolist(), strict=True))
            bad = [str(b) for b in saved["bad"]]
            skipped = int(saved["skipped"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("%s: unreadable (%s); finding the faces again", cache, exc)
        return None
    log.info("%s: the faces found in these photos before, read from %s", data, cache.name)
    return Dataset(Path(data), splits, skipped, bad), looked


def _write_faces(cache: Path, photos: str, dataset: Dataset, looked: dict[str, int]) -> None:
    from model.checkpoint import atomic_write

    arrays: dict[str, np.ndarray] = {"photos": np.asarray(photos), "splits": np.asarray(list(dataset.splits)),
                                     "looked": np.asarray([looked[name] for name in dataset.splits]),
                                     "bad": np.asarray(dataset.skipped_examples, dtype=str),
                                     "skipped": np.asarray(dataset.skipped)}  # fmt: skip
    for i, split in enumerate(dataset.splits.values()):
        arrays[f"x_{i}"], arrays[f"y_{i}"] = split.x, split.y
    atomic_write(cache, lambda tmp: np.savez(tmp, **arrays))


def _find_faces(data: str | Path, *, skip_bad: bool) -> tuple[Dataset, dict[str, int]]:
    """The face of each photo, and how many photos each split had."""
    from model.data import Split, iter_images

    find = FaceFinder(photos=True)
    bad: list[str] = []
    faces: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    seen: dict[str, int] = {}
    log.info("%s: finding the face in each photo (under a second a 1920x1080 photo)", data)
    for split_name, label, image in iter_images(data, skip_bad=skip_bad, bad=bad, photos=True):
        seen[split_name] = seen.get(split_name, 0) + 1
        if seen[split_name] % 200 == 0:
            log.info("%s [%s]: %d photos looked at", data, split_name, seen[split_name])
        face = find(image)
        if face is not None:
            kept, labels = faces.setdefault(split_name, ([], []))
            kept.append(face.astype(np.uint8))
            labels.append(label)
    if not seen:
        raise DatasetError(f"{data}: no images found (expected {data}/train/<emotion>/*.jpg)")
    for name, count in seen.items():
        kept = len(faces.get(name, ([], []))[0])
        if kept == 0:
            raise DatasetError(f"{data} [{name}]: no face found in any of its {count} images (face crops need "
                               "no --detect)")  # fmt: skip
    splits = {name: Split(np.stack(x), np.asarray(y, np.int64)) for name, (x, y) in faces.items()}
    return Dataset(Path(data), splits, len(bad), bad[:10]), seen


def cmd_evaluate(args: argparse.Namespace) -> int:
    from model.engine import load_predictor
    from model.inference import predict_in_batches
    from model.metrics import NO_PREDICTION, compute_metrics

    try:
        check_metadata(Path(args.model).expanduser())  # said at once, not after minutes of data and detection
        _split_name(args.usage)
        skipped = 0
        if args.detect:
            by_split, bad = images_by_split(args.data, skip_bad=args.skip_bad)
            usage = _choose_split(list(by_split), args.usage, args.data)
            x, found = detect_faces(by_split[usage][0])
            y, skipped = by_split[usage][1], len(bad)
        else:
            dataset = load_dataset(args.data, skip_bad=args.skip_bad)
            usage = _choose_split(list(dataset.splits), args.usage, args.data)
            x, y, skipped = dataset.splits[usage].x, dataset.splits[usage].y, dataset.skipped
            found = np.ones(len(y), bool)
        predictor = load_predictor(Path(args.model), device=args.device, tta=args.tta)
        y_pred = np.full(len(y), NO_PREDICTION, np.int64)
        if len(x):
            y_pred[found] = predict_in_batches(predictor, x).argmax(axis=1)
        metrics = compute_metrics(y, y_pred)
    except (DatasetError, ModelLoadError, DeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"model {args.model} ({predictor.engine} on {predictor.device}"
        + (f", {len(predictor.metadata.members)} nets" if predictor.metadata.members else "")
        + (", flip TTA" if predictor.tta else "")
        + f")\ndata  {args.data} [{usage}], {metrics.n} "
        + ("images" if args.detect else "faces")
        + (f", {skipped} bad rows skipped" if skipped else "")
        + (f", no face found in {metrics.no_face}" if args.detect else "")
    )
    print(
        f"accuracy {metrics.accuracy:.4f}   balanced accuracy {metrics.balanced_accuracy:.4f}   "
        f"macro-F1 {metrics.macro_f1:.4f}"
    )
    print(f"{'':10}{'precision':>10}{'recall':>8}{'f1':>8}{'n':>6}")
    for name, c in metrics.per_class.items():
        print(f"{name:10}{c['precision']:10.3f}{c['recall']:8.3f}{c['f1']:8.3f}{c['support']:6d}")
    print(
        "confusion (rows true, columns predicted" + (", images without a face left out" if args.detect else "") + "):"
    )
    print("          " + "".join(f"{name[:5]:>6}" for name in LABELS))
    for name, row in zip(LABELS, metrics.confusion, strict=True):
        print(f"{name:10}" + "".join(f"{v:6d}" for v in row))
    recall = {name: c["recall"] for name, c in metrics.per_class.items()}
    summary = {"model": str(args.model), "data": str(args.data), "usage": usage, "detect": args.detect,
               "engine": predictor.engine, "members": max(1, len(predictor.metadata.members)),
               "tta": predictor.tta,
               **metrics.to_dict(), "recall": recall}  # fmt: skip
    print(json.dumps(summary))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Exit 2 when the model itself is unusable, 1 when it loads but will not convert."""
    from model.checkpoint import add_tflite_twin
    from model.engine import convert_in_process
    from model.litert import tflite_path

    model = Path(args.model).expanduser()
    try:
        if args.out:
            convert_in_process(model, Path(args.out))
        else:
            add_tflite_twin(model)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LiteRTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out or tflite_path(model)}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Exit 2 for an image or model that cannot be used, or an output folder that cannot be written."""
    from desktop.core.annotate import explanation_card
    from desktop.core.detector import FaceDetector
    from desktop.core.pipeline import PipelineConfig
    from model.engine import load_predictor
    from model.preprocess import face_to_input, faces_to_batch, to_gray
    from model.saliency import occlusion_map

    image = cv2.imread(str(args.image), cv2.IMREAD_COLOR) if args.image.is_file() else None
    try:
        if image is None:
            raise DatasetError(f"{args.image}: not an image file that can be read")
        args.out.mkdir(parents=True, exist_ok=True)
        predictor = load_predictor(Path(args.model), device=args.device)
    except OSError as exc:
        print(f"error: {args.out}: cannot write there ({exc.strerror or exc})", file=sys.stderr)
        return 2
    except (DatasetError, ModelLoadError, DeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = PipelineConfig()
    gray = to_gray(image)
    boxes = FaceDetector(config.detector).detect(gray)
    faces = faces_to_batch(gray, boxes, config.margin) if boxes else face_to_input(gray)[None].astype(np.float32)
    report = []
    for k, face in enumerate(faces):
        saliency = occlusion_map(predictor, face)
        box = boxes[k] if boxes else None
        name = f"{args.image.stem}_face{k + 1}.png" if boxes else f"{args.image.stem}_whole.png"
        title = f"{args.image.name}, face {k + 1}:" if boxes else f"{args.image.name} (no face found: the whole image):"
        if not cv2.imwrite(str(args.out / name), explanation_card(saliency, title)):
            print(f"error: {args.out / name}: cannot write this image", file=sys.stderr)
            return 2
        report.append({
            "box": [box.x, box.y, box.w, box.h] if box else None, "emotion": saliency.emotion,
            "probs": {label: round(float(p), 4) for label, p in zip(LABELS, saliency.probs, strict=True)},
            "picture": str(args.out / name),
        })  # fmt: skip
        print(f"{name}: {saliency.emotion} {saliency.probs[saliency.label]:.0%}", file=sys.stderr)
    print(json.dumps({"image": str(args.image), "model": str(args.model), "engine": predictor.engine, "faces": report}))
    return 0


def main(argv: list[str] | None = None, prog: str = "train_emotion.py") -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # its INFO lines name temporary folders
    # Frozen, AutoGraph finds no source to read and says so in three lines at each LiteRT export, into the Retrain
    # dialog's log; the function runs as it is, which is all the export needs.
    logging.getLogger("tensorflow").addFilter(lambda r: not r.getMessage().startswith("AutoGraph could not transform"))
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command == "train":
        return cmd_train(args, parser)
    if args.command == "export":
        return cmd_export(args)
    if args.command == "explain":
        return cmd_explain(args)
    return cmd_evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
