"""Explain: occlusion maps that point where the model looks, in the window, in ``analyze`` and in the trainer's CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from desktop_support import REPO, FixedClassifier
from PySide6.QtCore import QPoint, Qt

from desktop.core.analyze import AnalyzeOutputs, analyze
from desktop.core.annotate import draw_result, overlay_heatmap
from desktop.core.pipeline import Pipeline
from desktop.core.sources import open_source
from desktop.ui.faces import ProbabilityStrip
from model.preprocess import DEFAULT_MARGIN, expand_box
from model.saliency import occlusion_map
from model.spec import INPUT_SIZE, LABELS

pytest_plugins = ["conftest_desktop"]

ASTRONAUT = REPO / "assets" / "astronaut.png"
HALF = INPUT_SIZE // 2
#: Cropping2D arguments that keep one half of the face, and that half as array slices.
HALVES = {
    "left": (((0, 0), (0, HALF)), np.s_[:, :HALF]),
    "right": (((0, 0), (HALF, 0)), np.s_[:, HALF:]),
    "top": (((0, HALF), (0, 0)), np.s_[:HALF, :]),
    "bottom": (((HALF, 0), (0, 0)), np.s_[HALF:, :]),
}


def half_model(half: str, face: np.ndarray):
    """A real Keras model whose Happy logit is a weighted sum of one half of the face's pixels, nothing else.

    The weights are that half's deviation from the face's mean grey (the occlusion fill), so hiding any
    patch of that half lowers Happy, and hiding any pixel outside it changes nothing.
    """
    import keras

    crop, part = HALVES[half]
    centred = face.astype(np.float32) - face.mean()
    weights = np.zeros((centred[part].size, len(LABELS)), np.float32)
    weights[:, 3] = 4.0 * centred[part].ravel() / np.sum(centred[part] ** 2)  # Happy's logit is 4 on the whole face
    model = keras.Sequential([
        keras.Input((INPUT_SIZE, INPUT_SIZE, 1)),
        keras.layers.Cropping2D(crop),
        keras.layers.Flatten(),
        keras.layers.Dense(len(LABELS), activation="softmax"),
    ])  # fmt: skip
    model.layers[-1].set_weights([weights, np.zeros(len(LABELS), np.float32)])
    return model


@pytest.mark.parametrize("half", list(HALVES))
def test_the_map_puts_its_mass_on_the_half_the_model_reads(half):
    from model.inference import make_predictor

    face = np.random.default_rng(0).integers(0, 256, (INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    saliency = occlusion_map(make_predictor(half_model(half, face)), face)
    _, part = HALVES[half]
    far = {"left": np.s_[:, 32:], "right": np.s_[:, :16], "top": np.s_[32:, :], "bottom": np.s_[:16, :]}[half]
    assert saliency.emotion == "Happy" and saliency.probs[3] > 0.5
    assert saliency.heatmap[part].sum() / saliency.heatmap.sum() > 0.75
    assert saliency.heatmap[far].max() == 0.0  # patches that never touch the half read: no evidence at all
    assert saliency.heatmap.max() == pytest.approx(1.0)


def test_the_real_model_on_the_photo_gives_the_same_finite_map_twice_and_looks_at_the_mouth(real_classifier):
    image = cv2.imread(str(ASTRONAUT))
    first, second = (Pipeline(real_classifier).process(image, explain="all") for _ in range(2))
    (a,), (b,) = first.explanations, second.explanations
    assert np.array_equal(a.saliency.heatmap, b.saliency.heatmap)
    heat = a.saliency.heatmap
    assert np.isfinite(heat).all() and heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    assert a.saliency.emotion == "Happy" and a.face_id == first.faces[0].face_id
    assert heat[32:].mean() > 2 * heat[:16].mean()  # a smile: the lower third, not the forehead
    assert first.timings.explain_ms > 0 and Pipeline(real_classifier).process(image).explanations == ()


def test_the_overlay_tints_only_the_explained_face(real_classifier):
    image = cv2.imread(str(ASTRONAUT))
    result = Pipeline(real_classifier).process(image, explain="all")
    plain, explained = draw_result(image, result), draw_result(image, result, result.explanations[0])
    box = expand_box(result.faces[0].box, DEFAULT_MARGIN, image.shape[1], image.shape[0])  # the model's crop
    changed = np.any(plain != explained, axis=2)
    assert changed[box.y : box.y + box.h, box.x : box.x + box.w].mean() > 0.2
    changed[box.y : box.y + box.h, box.x : box.x + box.w] = False
    assert not changed.any()


def test_the_overlay_tints_in_proportion_to_the_evidence_and_leaves_the_rest_alone():
    grey = np.full((300, 240, 3), 128, np.uint8)[20:260, :]  # a view, as draw_result passes a region of the frame
    heat = np.zeros((48, 48), np.float32)
    heat[:, :16] = 1.0  # strong evidence on the left third, none elsewhere
    out = overlay_heatmap(grey, heat)
    assert out.shape == grey.shape and out.dtype == np.uint8
    change = np.abs(out.astype(int) - 128).max(axis=2)
    assert change[:, :40].min() > 30  # tinted where the evidence is
    assert change[:, -60:].max() <= 1  # untouched far from it
    assert change[:, 60].mean() < change[:, 30].mean()  # and fading in between, not a hard edge
    # A tilted face's map is of the face cut upright: turned a quarter counter-clockwise, the left goes to the bottom.
    turned = np.abs(overlay_heatmap(grey, heat, angle=90).astype(int) - 128).max(axis=2)
    assert turned[-40:, :].min() > 30 and turned[:60, :].max() <= 1


def test_analyze_writes_one_picture_per_face_per_sampled_second(tmp_path, astronaut_video, real_classifier):
    out = tmp_path / "explain"
    with open_source(astronaut_video) as source:  # 45 frames at 30 fps: explained at 0, 0.5 and 1.0 s
        analyze(source, Pipeline(real_classifier), outputs=AnalyzeOutputs(explain=out, explain_every_s=0.5))
    pictures = sorted(p.name for p in out.iterdir())
    assert pictures == ["frame000000_face1.png", "frame000015_face1.png", "frame000030_face1.png"]
    card = cv2.imread(str(out / pictures[0]))
    assert card is not None and card.shape[0] > 150 and card.shape[1] > 400


def test_analyze_refuses_a_bad_explain_setting_before_it_starts(tmp_path, astronaut_video):
    from desktop.core.export import ExportError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with open_source(astronaut_video) as source, pytest.raises(ExportError, match="cannot write there"):
        analyze(source, Pipeline(None), outputs=AnalyzeOutputs(explain=blocker / "sub"))
    with open_source(astronaut_video) as source, pytest.raises(ValueError, match="explain-every"):
        analyze(source, Pipeline(None), outputs=AnalyzeOutputs(explain=tmp_path / "x", explain_every_s=0))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train_emotion.py"), *args], capture_output=True, text=True, timeout=300
    )


def test_train_emotion_explain_writes_a_picture_and_a_json_line(tmp_path):
    done = run_cli("explain", "--image", str(ASTRONAUT), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    (face,) = report["faces"]
    assert face["emotion"] == "Happy" and report["engine"] == "LiteRT"
    assert sum(face["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert cv2.imread(face["picture"]) is not None and Path(face["picture"]).parent == tmp_path

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    done = run_cli("explain", "--image", str(bad), "--out", str(tmp_path))
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in done.stderr


def test_the_strip_keeps_ten_seconds_of_one_face_and_starts_over_on_a_seek(qtbot):
    strip = ProbabilityStrip()
    qtbot.addWidget(strip)
    probs = (0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1)
    for k in range(300):  # 15 s at 20 fps
        strip.add(1, k / 20, probs)
    times = [t for t, _ in strip.points()]
    assert times[-1] == pytest.approx(14.95) and times[0] >= 14.95 - ProbabilityStrip.SPAN_S
    strip.show()
    qtbot.waitExposed(strip)
    strip.repaint()
    strip.add(1, 3.0, probs)  # the video went back
    assert [t for t, _ in strip.points()] == [3.0]
    strip.add(2, 3.5, probs)  # another face
    assert strip.face_id() == 2 and len(strip.points()) == 1


def click_face(qtbot, window, face) -> None:
    """Click the middle of ``face``'s box on the video, as a user would."""
    target = window.video.image_rect()
    scale = target.width() / window.last.result.width
    x = target.left() + (face.box.x + face.box.w / 2) * scale
    y = target.top() + (face.box.y + face.box.h / 2) * scale
    qtbot.mouseClick(window.video, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))


def test_click_a_face_turn_on_explain_and_its_map_updates_while_the_video_plays(
    qtbot, open_window, astronaut_video, real_classifier
):
    window = open_window(real_classifier, str(astronaut_video))
    window.loop_action.setChecked(True)
    qtbot.waitUntil(lambda: window.last is not None and len(window.last.result.faces) == 1, timeout=20_000)
    face = window.last.result.faces[0]
    click_face(qtbot, window, face)
    assert window.selected_face == face.face_id
    assert [c.is_selected() for c in window.faces.cards()] == [True]

    qtbot.keyClick(window, Qt.Key.Key_E)  # the Explain shortcut
    assert window.explain_action.isChecked() and window.side_tabs.currentWidget() is window.explain_panel
    seen: set[int] = set()

    def maps_arrive() -> bool:
        shown = window.explain_panel.explanation()
        if shown is not None:
            assert shown.face_id == window.selected_face
            seen.add(id(shown))
        return len(seen) >= 3

    qtbot.waitUntil(maps_arrive, timeout=20_000)  # a new map every EXPLAIN_EVERY_S while frames flow
    assert window.explain_panel.bars.face().emotion in LABELS
    assert window.last.explanation is not None and window.last.explanation.face_id == window.selected_face

    window.explain_action.trigger()  # off again: frames come without maps
    processed = window.last.processed
    qtbot.waitUntil(lambda: window.last.processed > processed + 3 and window.last.explanation is None, timeout=20_000)
    assert len(window.strip.points()) > 3 and window.strip.face_id() == window.selected_face
    assert window.errors == []


class SlowMaps(FixedClassifier):
    """Fixed answers; a map's batch (26 faces) takes 0.6 s, as on a slow CPU, and when and where it ran is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.maps: list[tuple[float, float, str]] = []  # (start, end, thread name)
        self.frames: list[tuple[float, str]] = []  # (time, thread name) of each frame's call
        self.nice: dict[str, int] = {}  # Linux: the niceness of the thread that ran a map, a frame

    def predict(self, batch: np.ndarray) -> np.ndarray:
        start = time.monotonic()
        kind = "map" if len(batch) > 20 else "frame"
        if sys.platform.startswith("linux"):
            self.nice[kind] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        if kind == "map":
            time.sleep(0.6)
            self.maps.append((start, time.monotonic(), threading.current_thread().name))
        else:
            self.frames.append((start, threading.current_thread().name))  # the pipeline's QThread: "Dummy-N"
        return super().predict(batch)


def explain_a_looping_video(qtbot, open_window, video, classifier):
    """A real window playing ``video`` in a loop, with Explain on for its one face once it is shown."""
    window = open_window(classifier, str(video))
    window.loop_action.setChecked(True)
    qtbot.waitUntil(lambda: window.last is not None and len(window.last.result.faces) == 1, timeout=20_000)
    window.set_explain(True)
    return window


def test_a_slow_map_is_computed_beside_the_video_which_keeps_playing(qtbot, open_window, astronaut_video):
    classifier = SlowMaps()
    window = explain_a_looping_video(qtbot, open_window, astronaut_video, classifier)
    qtbot.waitUntil(
        lambda: len(classifier.maps) >= 2 and window.explain_panel.explanation() is not None, timeout=20_000
    )

    start, end, thread = classifier.maps[0]
    during = [name for t, name in classifier.frames if start < t < end]
    assert thread == "explainer" and len({name for _, name in classifier.frames}) == 1  # one frame thread
    assert len(during) >= 5  # 0.6 s of a 30 fps video: frames were classified while the map was computed
    if sys.platform.startswith("linux"):  # the map yields the CPU to the frames, which keep their priority
        assert classifier.nice["map"] == max(10, os.getpriority(os.PRIO_PROCESS, 0))  # nice 10, or lower already
        assert classifier.nice["frame"] == os.getpriority(os.PRIO_PROCESS, 0)
    assert window.explain_panel.explanation().face_id == window.selected_face
    assert window.errors == []


class BrokenMaps(FixedClassifier):
    """Fixed answers for frames; a map's batch raises, as a model that breaks on it would."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) > 20:
            raise RuntimeError("no map today")
        return super().predict(batch)


def test_a_failing_map_is_said_once_and_the_video_plays_on(qtbot, open_window, astronaut_video):
    window = explain_a_looping_video(qtbot, open_window, astronaut_video, BrokenMaps())
    qtbot.waitUntil(lambda: window.errors != [], timeout=20_000)
    processed = window.last.processed
    qtbot.waitUntil(lambda: window.last.processed > processed + 15, timeout=20_000)  # half a second more
    assert len(window.errors) == 1 and "RuntimeError: no map today" in window.errors[0]
    assert window.last.explanation is None and window.explain_panel.explanation() is None


def test_a_crowd_gets_compact_rows_and_the_chosen_face_a_card_even_when_paused(
    qtbot, open_window, tmp_path, real_classifier
):
    face = cv2.imread(str(ASTRONAUT))[30:230, 120:320]  # the photo's face with some room around it
    crowd = np.vstack([np.hstack([face, face[:, ::-1], face]), np.hstack([face[:, ::-1], face, face[:, ::-1]])])
    path = tmp_path / "crowd.png"
    cv2.imwrite(str(path), crowd)
    window = open_window(real_classifier, str(path))
    qtbot.waitUntil(lambda: window.last is not None and len(window.faces.widgets()) == 6, timeout=20_000)
    assert len(window.faces.rows()) == 5 and len(window.faces.cards()) == 1
    assert window.faces.cards()[0].face().face_id == window.selected_face  # the largest face, until a click

    other = window.faces.rows()[2].face().face_id
    qtbot.mouseClick(window.faces.rows()[2], Qt.MouseButton.LeftButton)
    assert window.selected_face == other
    assert [c.face().face_id for c in window.faces.cards()] == [other] and len(window.faces.rows()) == 5

    window.set_explain(True)  # the image has ended: the frame on screen is explained again at once
    qtbot.waitUntil(lambda: window.explain_panel.explanation() is not None, timeout=20_000)
    assert window.explain_panel.explanation().face_id == other
    assert window.errors == []
