"""``python -m desktop analyze``: the CLI end to end on a real video with the real model, and its errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from desktop_support import REPO, VIDEO_FRAMES, VIDEO_SIZE, shared_media

from desktop.core.analyze import AnalyzeOutputs, analyze
from desktop.core.export import CSV_COLUMNS
from desktop.core.pipeline import Pipeline
from desktop.core.sources import DemoSource, open_source
from model.spec import LABEL_KEYS

pytest_plugins = ["conftest_desktop"]

SUMMARY_KEYS = {"frames", "frames_with_faces", "faces", "fps", "emotion_share", "dominant_emotion"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    cmd = [sys.executable, "-m", "desktop", "analyze", *map(str, args)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_analyze_cli_writes_every_output(astronaut_video, tmp_path):
    out = {name: tmp_path / f"out.{ext}" for name, ext in (("csv", "csv"), ("json", "json"), ("annotated", "mp4"))}
    out["plot"] = tmp_path / "plot.png"
    proc = run_cli(astronaut_video, *(x for name, path in out.items() for x in (f"--{name}", path)))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["frames"] == VIDEO_FRAMES
    assert summary["frames_with_faces"] >= 0.9 * VIDEO_FRAMES
    assert summary["faces"] >= summary["frames_with_faces"] and summary["fps"] > 0
    assert set(summary["emotion_share"]) == set(LABEL_KEYS)
    assert sum(summary["emotion_share"].values()) == pytest.approx(1.0)
    assert summary["dominant_emotion"] == max(summary["emotion_share"], key=summary["emotion_share"].get)
    assert "frames" in proc.stderr  # the progress bar
    assert "Traceback" not in proc.stderr

    with out["csv"].open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == summary["faces"]
    first = dict(zip(rows[0], rows[1], strict=True))
    probs = np.array([float(first[k]) for k in LABEL_KEYS])
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert first["emotion"] == LABEL_KEYS[int(probs.argmax())]
    assert int(first["w"]) > 50 and float(first["time_s"]) == pytest.approx(int(first["frame"]) / 30, abs=1e-3)

    data = json.loads(out["json"].read_text())
    assert len(data["frames"]) == VIDEO_FRAMES and data["summary"]["faces"] == summary["faces"]

    video = cv2.VideoCapture(str(out["annotated"]))
    assert video.isOpened()
    assert (int(video.get(cv2.CAP_PROP_FRAME_WIDTH)), int(video.get(cv2.CAP_PROP_FRAME_HEIGHT))) == VIDEO_SIZE
    count = 0
    while video.read()[0]:
        count += 1
    assert count == VIDEO_FRAMES
    plot = cv2.imread(str(out["plot"]))
    assert plot is not None and plot.shape[0] > 200


def test_a_tilted_face_is_exported_with_its_angle(astronaut_video, tmp_path, real_classifier):
    """A head tilted 30 degrees, read turned back: the CSV and JSON give that angle with its box; upright, 0."""
    from desktop.core.export import write_csv, write_json

    path = tmp_path / "tilted.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, VIDEO_SIZE)
    turn = cv2.getRotationMatrix2D((VIDEO_SIZE[0] / 2, VIDEO_SIZE[1] / 2), 30, 1.0)
    with DemoSource(size=VIDEO_SIZE) as demo:
        for _ in range(30):
            writer.write(cv2.warpAffine(demo.read().image, turn, VIDEO_SIZE, borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    for video, sign in ((path, -1), (astronaut_video, 0)):
        with open_source(video) as source:
            results, summary = analyze(source, Pipeline(real_classifier), max_frames=30)
        write_csv(tmp_path / "out.csv", results)
        write_json(tmp_path / "out.json", results, summary)
        with (tmp_path / "out.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 30 and {np.sign(float(row["angle"])) for row in rows} == {sign}
        faces = [face for frame in json.loads((tmp_path / "out.json").read_text())["frames"] for face in frame["faces"]]
        assert [face["angle"] for face in faces] == [float(row["angle"]) for row in rows]


def test_analyze_every_and_max_frames(astronaut_video, real_classifier):
    with open_source(astronaut_video) as source:
        results, summary = analyze(source, Pipeline(real_classifier), every=3, max_frames=5)
    assert [r.index for r in results] == [0, 3, 6, 9, 12]
    assert summary.frames == 5 and summary.fps > 0


def test_analyze_finds_the_face_in_every_frame_of_the_real_clip(real_classifier, tmp_path):
    clip = shared_media("pyfeat_single_face.mp4")
    with open_source(clip) as source:
        _, summary = analyze(source, Pipeline(real_classifier), outputs=AnalyzeOutputs(csv=tmp_path / "o.csv"))
    assert (summary.frames, summary.frames_with_faces, summary.face_ids) == (72, 72, 1)
    assert summary.dominant_emotion in LABEL_KEYS


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "missing.mp4", "no such file"),
        (lambda p: (p / "empty.mp4").touch() or p / "empty.mp4", "empty"),
        (lambda p: (p / "junk.avi").write_bytes(np.random.default_rng(1).bytes(20_000)) and p / "junk.avi", "corrupt"),
        (lambda p: (p / "no_images").mkdir() or p / "no_images", "no images"),
    ],
)
def test_bad_input_gives_one_line_and_a_nonzero_exit(tmp_path, setup, message):
    proc = run_cli(setup(tmp_path), "--csv", tmp_path / "out.csv")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr
    assert proc.stdout == "" and not (tmp_path / "out.csv").exists()


def test_bad_options_are_refused(astronaut_video, tmp_path):
    proc = run_cli(astronaut_video, "--every", "0")
    assert proc.returncode != 0 and proc.stderr.strip() == "error: --every must be 1 or more"
    proc = run_cli(astronaut_video, "--device", "tpu")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = run_cli(astronaut_video, "--plot", tmp_path / "timeline.txt")  # said before the video is read
    assert proc.returncode != 0 and proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'timeline.txt'}: unsupported picture type (use .png, .jpg, .svg or .pdf)"
    ]


def test_the_gui_session_log_streams_rows_to_disk_with_flat_memory(tmp_path):
    """Hours of video must not grow the app's memory: the session's rows go to a file, not a list."""
    import tracemalloc

    from desktop.core.export import SessionLog, csv_text
    from desktop.core.pipeline import Face, FrameResult, Timings
    from model.preprocess import Box

    def result(i: int) -> FrameResult:
        probs = tuple(float(p) for p in np.random.default_rng(i).dirichlet(np.ones(7)))
        faces = (Face(1, Box(i % 50, 10, 80, 80), probs), Face(2, Box(300, 10, 60, 60), probs[::-1]))
        return FrameResult(i, i / 30, 640, 360, faces, Timings(1.0, 1.0, 1.0, 1.0))

    session = SessionLog()
    first = [result(i) for i in range(50)]
    for r in first:
        session.add(r)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(50, 5050):
        session.add(result(i))
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 1_000_000, grown  # keeping the 5,000 results in a list grows by ~5 MB
    assert (session.frames, session.rows, session.last.index) == (5050, 10100, 5049)
    session.export(tmp_path / "out.csv")
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert len(lines) == 1 + 10100
    assert lines[: 1 + 100] == csv_text(first).splitlines()  # the same rows as the one-shot writer
    name = session._file.name
    session.close()
    assert not Path(name).exists()
