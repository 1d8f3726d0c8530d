"""`k2m extract`: the BlazePose mapping, accuracy on real COCO photos, the mechanics on real video,
and — with fake backends behind the same interface, since ultralytics / rtmlib and their weights
are not installed here — multi-person picking, tracked ids and the two-pass scheme."""

import importlib.util
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from k2m_core.errors import UserError
from k2m_core.extract import estimators
from k2m_core.extract.estimators import BLAZEPOSE_TO_COCO, EstimatorSpec, People, from_blazepose, from_ultralytics
from k2m_core.extract.run import ExtractConfig, run_extract
from k2m_core.keypoints import COCO17_NAMES
from k2m_core.preprocess.formats.k2m_jsonl import iter_k2m_jsonl

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "fixtures" / "real"
STREET, POSETRACK = REAL / "street_demo_5frames.mp4", REAL / "posetrack18_000001_5frames.mp4"
needs_mediapipe = pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None,
                                     reason="the default backend: pip install 'k2m[video]' (CI does)")


def read_record(path: Path) -> dict:
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


# ---- BlazePose → COCO-17 -------------------------------------------------------------------------

@needs_mediapipe
def test_blazepose_mapping_matches_mediapipe_landmark_names():
    from mediapipe.python.solutions.pose import PoseLandmark

    assert [PoseLandmark(i).name.lower() for i in BLAZEPOSE_TO_COCO] == list(COCO17_NAMES)


def test_blazepose_visibility_becomes_confidence_and_points_outside_the_frame_count_as_unseen():
    marks = np.zeros((33, 3))
    marks[:, 0], marks[:, 1] = np.linspace(0.1, 0.9, 33), 0.5
    marks[:, 2] = np.linspace(0, 1, 33)
    marks[27] = (1.2, 0.5, 0.9)  # left ankle, right of the frame
    person = from_blazepose(marks, width=200, height=100)
    coco = list(BLAZEPOSE_TO_COCO)
    assert person.xy.shape == (1, 17, 2) and person.conf.shape == (1, 17)
    np.testing.assert_allclose(person.xy[0, 0], (marks[0, 0] * 200, 50), atol=1e-4)
    assert person.conf[0, 15] == 0  # outside → unseen
    np.testing.assert_allclose(np.delete(person.conf[0], 15), np.delete(marks[coco, 2], 15), atol=1e-6)
    np.testing.assert_allclose(person.boxes[0], (0.1 * 200, 50, 200, 50), atol=1e-4)  # all 33, clipped


# ---- accuracy on real photos ----------------------------------------------------------------------

@needs_mediapipe
def test_mediapipe_accuracy_on_real_coco_photos():
    """Measured with mediapipe 0.10.14: PCK@0.1 0.758 (47/62 keypoints), mean OKS 0.734, AP 0.525;
    every photo's person matched with IoU >= 0.51. Floors a little under that."""
    from k2m_core.extract.score import score_coco

    estimator = EstimatorSpec().open(video=False)
    try:
        score = score_coco(REAL / "coco_person_keypoints_sample.json", REAL / "coco_images", estimator)
    finally:
        estimator.close()
    assert len(score.images) == 4 and min(i.iou for i in score.images) > 0.45
    assert score.pck >= 0.72
    assert score.mean_oks >= 0.70
    assert score.ap >= 0.45


def test_oks_and_pck_scoring_rules():
    from k2m_core.extract.score import SIGMAS, iou, oks

    truth = np.random.default_rng(0).uniform(0, 100, (17, 2))
    visible = np.ones(17, bool)
    assert oks(truth, truth, visible, 1000.0) == pytest.approx(1.0)
    shifted = truth + (np.sqrt(1000.0) * 2 * SIGMAS)[:, None] / np.sqrt(2)  # e = 1/2 at every keypoint
    assert oks(shifted, truth, visible, 1000.0) == pytest.approx(math.exp(-0.5))
    assert oks(truth, truth, np.zeros(17, bool), 1000.0) == 0.0
    np.testing.assert_allclose(iou(np.array([0, 0, 2, 2.]), np.array([[1, 0, 3, 2.], [5, 5, 6, 6]])), [1 / 3, 0])


# ---- real video --------------------------------------------------------------------------------------

@needs_mediapipe
def test_extract_real_videos_then_preprocess_reads_them(k2m, tmp_path):
    out = tmp_path / "kp"
    result = k2m("extract", STREET, POSETRACK, "--out", out, "--fov", "60")
    assert result.code == 0, result.err
    assert "2 extracted" in result.out
    for video, (width, height, fps) in ((STREET, (960, 540, 5)), (POSETRACK, (1280, 720, 30))):
        record = read_record(out / f"{video.stem}.jsonl")
        assert (record["video"], record["width"], record["height"], record["fps"]) == (video.stem, width, height, fps)
        assert len(record["keypoints"]) == 5 and len(record["boxes"]) == 5
        assert record["focal"] == pytest.approx(width / 2 / math.tan(math.radians(30)))
        assert record["estimator"].startswith("mediapipe 0.10.14") and record["source"] == video.name
        assert "person_ids" not in record  # single-person backend: no tracker ids
        seen = [f for f in record["keypoints"] if f is not None]
        assert len(seen) >= 4, f"{video.name}: a person in only {len(seen)} of 5 frames"
        for frame, box in zip(record["keypoints"], record["boxes"]):
            if frame is not None:
                points = np.array(frame)
                assert points.shape == (17, 3) and (points[:, 2] <= 1).all()
                x0, y0, x1, y1 = box
                assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
                inside = points[points[:, 2] > 0.5, :2]
                assert ((inside >= (x0 - 1, y0 - 1)) & (inside <= (x1 + 1, y1 + 1))).all()
    # the format reader takes it as is: 17 keypoints per seen frame, frame size and rate from the file
    det = next(iter_k2m_jsonl(out / f"{POSETRACK.stem}.jsonl"))
    assert det.fps == 30 and tuple(det.size[0]) == (1280, 720) and det.xy.shape[1:] == (17, 2)
    assert not list(out.glob(".*"))  # no temporary file left

    captions = tmp_path / "captions.jsonl"
    captions.write_text("".join(json.dumps({"video": v.stem, "caption": "people walk"}) + "\n"
                                for v in (STREET, POSETRACK)))
    pre = k2m("preprocess", out, "--captions", captions, "--videos", REAL, "--out", tmp_path / "d.h5")
    report = json.loads((tmp_path / "d.report.json").read_text())
    # 5-frame videos make no 2 s clip: a clean rejection, not a parse failure, with the camera checked
    assert pre.code == 2 and "no clip was kept" in pre.err
    assert report["inputs"] == {"read": 2, "rejected": 0, "videos": 2, "frames": 10}
    assert report["files"] == [] and report["camera"]["checked_videos"] == 2
    assert "too-short" in report["rejections"]


@needs_mediapipe
def test_skip_force_unreadable_and_strict(k2m, tmp_path):
    out = tmp_path / "kp"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    first = k2m("-q", "extract", POSETRACK, broken, "--out", out)
    assert first.code == 0, first.err
    assert "1 extracted, 0 already there, 1 unreadable" in first.out
    assert "broken.mp4: ffmpeg cannot read it: " in first.err and "Invalid data" in first.err
    assert sorted(p.name for p in out.iterdir()) == [f"{POSETRACK.stem}.jsonl"]  # nothing for the broken one
    target = out / f"{POSETRACK.stem}.jsonl"
    target.write_text(target.read_text().replace('"source"', '"edited": 1, "source"'))
    again = k2m("-q", "extract", POSETRACK, "--out", out)
    assert "0 extracted, 1 already there" in again.out and '"edited"' in target.read_text()  # left alone
    forced = k2m("-q", "extract", POSETRACK, "--out", out, "--force")
    assert "1 extracted" in forced.out and '"edited"' not in target.read_text()
    strict = k2m("extract", STREET, broken, "--out", out, "--strict")
    assert strict.code == 2 and strict.err.startswith("error: ") and "broken.mp4" in strict.err
    assert not (out / f"{STREET.stem}.jsonl").exists()  # --strict checks every video first


@needs_mediapipe
def test_workers_extract_a_folder_like_one_process(k2m, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for v in (STREET, POSETRACK):
        (videos / v.name).symlink_to(v)
    (videos / "notes.txt").write_text("not a video")
    two = k2m("-q", "extract", videos, "--out", tmp_path / "two", "--workers", "2")
    one = k2m("-q", "extract", videos / STREET.name, "--out", tmp_path / "one")
    assert two.code == 0 and one.code == 0, two.err + one.err
    name = f"{STREET.stem}.jsonl"
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted([f"{POSETRACK.stem}.jsonl", name])
    assert read_record(tmp_path / "two" / name) == read_record(tmp_path / "one" / name)


def test_input_and_option_errors(k2m, tmp_path):
    cases = [
        (["extract", tmp_path / "missing.mp4", "--out", tmp_path], "missing.mp4: no such file or folder"),
        (["extract", tmp_path, "--out", tmp_path / "o"], "no videos in this folder"),
        (["extract", POSETRACK, "--out", tmp_path, "--estimator", "openpose"], "--estimator must be one of"),
        (["extract", POSETRACK, "--out", tmp_path, "--focal", "-3"], "--focal must be a positive"),
        (["extract", POSETRACK, "--out", tmp_path, "--focal", "900", "--fov", "60"], "not both"),
        (["extract", POSETRACK, "--out", tmp_path, "--workers", "0"], "--workers must be at least 1"),
        (["extract", POSETRACK, "--out", tmp_path, "--two-pass"], "two different backends"),
        (["extract", POSETRACK, "--out", tmp_path, "--weights", POSETRACK], "mediapipe uses the pose model"),
    ]
    for args, message in cases:
        result = k2m(*args)
        assert result.code == 2 and message in result.err, (args, result.err)
        assert result.err.count("\n") == 1
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(POSETRACK, other / POSETRACK.name)  # another video of the same name (a link would be the same)
    clash = k2m("extract", POSETRACK, other, "--out", tmp_path / "o")
    assert clash.code == 2 and "would both write" in clash.err


# ---- ultralytics / rtmlib: real loading paths up to the library, errors ------------------------------

def test_model_backends_say_where_to_get_weights_and_refuse_pickles(tmp_path):
    with pytest.raises(UserError, match=r"--estimator ultralytics needs model weights: give --weights PATH.*yolo expo"):
        EstimatorSpec("ultralytics").check()
    with pytest.raises(UserError, match=r"--estimator rtmlib needs model weights.*RTMPose"):
        EstimatorSpec("rtmlib").check()
    with pytest.raises(UserError, match=r"--fast ultralytics needs model weights: give --fast-weights PATH"):
        EstimatorSpec("ultralytics", option="--fast").check()
    pickle = tmp_path / "yolo11n-pose.pt"
    pickle.write_bytes(b"\x80\x04")
    with pytest.raises(UserError, match=r"Python pickles.*yolo export model=.*yolo11n-pose.pt format=onnx"):
        EstimatorSpec("ultralytics", pickle).check()
    with pytest.raises(UserError, match="no such model file"):
        EstimatorSpec("rtmlib", tmp_path / "none.onnx").check()
    model = tmp_path / "rtmpose.onnx"
    model.write_bytes(b"onnx")
    with pytest.raises(UserError, match="top-down and needs the person boxes"):
        ExtractConfig(estimator=EstimatorSpec("rtmlib", model)).check()
    with pytest.raises(UserError, match="--fast rtmlib: the fast pass must find the people itself"):
        ExtractConfig(estimator=EstimatorSpec(), fast=EstimatorSpec("rtmlib", model, option="--fast")).check()


@pytest.mark.parametrize("name,module", [("ultralytics", "ultralytics"), ("rtmlib", "rtmlib")])
def test_model_backend_without_its_library_says_what_to_install(tmp_path, monkeypatch, name, module):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    monkeypatch.setitem(__import__("sys").modules, module, None)  # importing it raises ImportError
    with pytest.raises(UserError, match=rf"needs the {module} package.*pip install {module}"):
        EstimatorSpec(name, model).open()


class _Boxes:
    def __init__(self, xyxy, ids):
        self.xyxy, self.id = xyxy, ids

    def __len__(self):
        return len(self.xyxy)


def test_ultralytics_results_become_people():
    """The shapes of ultralytics' `Results` (torch tensors): keypoints.xy/conf, boxes.xyxy/id."""
    import torch

    xy = torch.rand(2, 17, 2) * 100
    result = SimpleNamespace(keypoints=SimpleNamespace(xy=xy, conf=torch.full((2, 17), 0.8)),
                             boxes=_Boxes(torch.tensor([[0, 0, 10, 10], [5, 5, 50, 90.]]), torch.tensor([4.0, 9.0])))
    people = from_ultralytics(result)
    np.testing.assert_allclose(people.xy, xy.numpy())
    np.testing.assert_allclose(people.conf, 0.8)
    assert people.ids.tolist() == [4, 9] and people.boxes.shape == (2, 4)
    result.boxes.id = None  # predict() rather than track(): no ids
    assert from_ultralytics(result).ids is None
    result.boxes = _Boxes(torch.zeros(0, 4), None)
    assert len(from_ultralytics(result)) == 0


def _tiny_rtmpose(path: Path) -> None:
    """A 192×256 RTMPose-shaped ONNX model (SimCC outputs, split ratio 2) whose keypoint k is at
    input x = 10 k + 6, y = 128 with scores 0.9 (x) and 0.8 (y), whatever the image."""
    from onnx import TensorProto, helper, numpy_helper, save

    width, height = 192, 256
    px, py = np.zeros((1, 17, 2 * width), np.float32), np.zeros((1, 17, 2 * height), np.float32)
    px[0, np.arange(17), 2 * (10 * np.arange(17) + 6)] = 0.9
    py[0, :, 2 * 128] = 0.8
    nodes = [helper.make_node("ReduceMean", ["input"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Add", ["px", "nothing"], ["simcc_x"]),
             helper.make_node("Add", ["py", "nothing"], ["simcc_y"])]
    graph = helper.make_graph(
        nodes, "tiny_rtmpose", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 17, 2 * width]),
         helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, 17, 2 * height])],
        [numpy_helper.from_array(px, "px"), numpy_helper.from_array(py, "py"),
         numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))


def test_rtmlib_backend_runs_a_real_onnx_model_in_the_hint_box(tmp_path):
    """The real rtmlib path (onnxruntime, rtmlib's crop and SimCC decoding) on a model built here.
    Needs rtmlib, onnxruntime and onnx, which k2m does not install (rtmlib pins opencv-python, which
    clashes with mediapipe's opencv-contrib-python): skipped where they are missing."""
    for module in ("rtmlib", "onnxruntime", "onnx"):
        pytest.importorskip(module)
    _tiny_rtmpose(tmp_path / "tiny.onnx")
    estimator = EstimatorSpec("rtmlib", tmp_path / "tiny.onnx").open()
    people = estimator(np.zeros((480, 640, 3), np.uint8), hint=np.array([100, 50, 292, 306.0]))
    # the 192×256 box, padded by 1.25 to 240×320 around its centre (196, 178), is the model's input
    np.testing.assert_allclose(people.xy[0, :, 0], (10 * np.arange(17) + 6) * 240 / 192 + 196 - 120, atol=1e-3)
    np.testing.assert_allclose(people.xy[0, :, 1], 178, atol=1e-3)
    np.testing.assert_allclose(people.conf, 0.85, atol=1e-6)  # rtmlib: the mean of the x and y maxima
    np.testing.assert_allclose(people.boxes, [[100, 50, 292, 306]])
    assert estimator.name == "rtmlib RTMPose tiny.onnx"
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(UserError, match=r"broken.onnx: rtmlib cannot load this model \("):
        EstimatorSpec("rtmlib", tmp_path / "broken.onnx").open()


# ---- the pipeline with fake backends behind the same interface ----------------------------------------

def _walker(i: int, x0: float = 40.0, height: float = 80.0) -> np.ndarray:
    """A (17, 2) stick person ``height`` px tall walking right 1 px per frame."""
    t = np.linspace(0, 1, 17)
    return np.stack([x0 + i + 10 * np.sin(3 * t), 10 + t * height], axis=1)


class FakeTracker:
    """Two people, ids 3 (small) and 5 (large), absent in frames 100–114 — like a tracking YOLO."""

    tracks, name = True, "fake-tracker"

    def __init__(self):
        self.frame = -1

    def __call__(self, frame, hint=None):
        self.frame += 1
        if 100 <= self.frame < 115:
            return People.empty()
        big, small = _walker(self.frame), _walker(self.frame, x0=5, height=20)
        xy = np.stack([small, big]).astype(np.float32)
        boxes = np.concatenate([xy.min(1), xy.max(1)], axis=1)
        return People(xy, np.ones((2, 17), np.float32), boxes, np.array([3, 5]))

    def close(self):
        pass


class FakeAccurate:
    """Top-down: one person in the hint box, 1 px right of the fast pass; records its calls."""

    tracks, name, calls = False, "fake-accurate", []

    def __call__(self, frame, hint=None):
        FakeAccurate.calls.append(None if hint is None else np.array(hint))
        i = int(round(hint[0] - 40))  # the fake tracker's big person starts at x = 40 + i
        xy = _walker(i)[None].astype(np.float32) + (1, 0)
        return People(xy, np.full((1, 17), 0.9, np.float32), np.array(hint, np.float32)[None])

    def close(self):
        pass


@pytest.fixture
def flat_video(tmp_path):
    """150 grey frames at 30 fps (5 s), 160×120: still edges, so no camera movement."""
    import imageio_ffmpeg

    path = tmp_path / "walk.mp4"
    writer = imageio_ffmpeg.write_frames(str(path), (160, 120), fps=30, macro_block_size=8)
    writer.send(None)
    for _ in range(150):
        writer.send(np.full((120, 160, 3), 128, np.uint8))
    writer.close()
    return path


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    FakeAccurate.calls = []
    monkeypatch.setitem(estimators.OPENERS, "ultralytics", lambda spec, video: FakeTracker())
    monkeypatch.setitem(estimators.OPENERS, "rtmlib", lambda spec, video: FakeAccurate())
    return model


def test_largest_person_box_and_tracked_id_are_written(flat_video, fakes, tmp_path):
    cfg = ExtractConfig(estimator=EstimatorSpec("ultralytics", fakes))
    [result] = run_extract([flat_video], tmp_path / "out", cfg)
    assert (result.status, result.frames, result.with_person) == ("done", 150, 135)
    record = read_record(tmp_path / "out" / "walk.jsonl")
    assert record["person_ids"][:100] == [5] * 100 and record["person_ids"][100:115] == [None] * 15
    np.testing.assert_allclose(np.array(record["keypoints"][7])[:, :2], _walker(7), atol=0.01)
    assert record["boxes"][7][3] - record["boxes"][7][1] == pytest.approx(80, abs=0.01)
    assert record["keypoints"][100] is None and record["boxes"][100] is None


def test_two_pass_re_extracts_only_the_stretches_worth_keeping(flat_video, fakes, tmp_path):
    """Fast pass: a person in frames 0–99 and 115–149. 115–149 is 35 frames (1.2 s), shorter than
    preprocess's 2 s clips, so only 0–99 are re-extracted, each given the fast pass's box."""
    cfg = ExtractConfig(estimator=EstimatorSpec("rtmlib", fakes),
                        fast=EstimatorSpec("ultralytics", fakes, option="--fast"))
    events = []
    [result] = run_extract([flat_video], tmp_path / "out", cfg, lambda *e: events.append(e))
    assert result.status == "done" and len(FakeAccurate.calls) == 100
    record = read_record(tmp_path / "out" / "walk.jsonl")
    kept = [i for i, f in enumerate(record["keypoints"]) if f is not None]
    assert kept == list(range(100))
    np.testing.assert_allclose(np.array(record["keypoints"][42])[:, :2], _walker(42) + (1, 0), atol=0.01)
    np.testing.assert_allclose(FakeAccurate.calls[42], np.r_[_walker(42).min(0), _walker(42).max(0)], atol=1e-3)
    assert record["person_ids"][:100] == [5] * 100 and set(record["person_ids"][100:]) == {None}
    assert record["estimator"] == "fake-accurate (two-pass after fake-tracker)"
    totals = [v for _, kind, v in events if kind == "total"]
    assert totals[-1] == 250 and sum(v for _, kind, v in events if kind == "frames") == 250


@needs_mediapipe
def test_from_video_example_runs_as_written(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(["bash", str(ROOT / "examples" / "from_video.sh"), str(POSETRACK), str(tmp_path / "w")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no 2-10 s clip passed" in result.stderr  # 5 frames: preprocess keeps nothing, lift goes on
    bvh = list((tmp_path / "w" / "motion").glob("*.bvh"))
    assert len(bvh) == 1 and "Frames: 5" in bvh[0].read_text()
    assert (tmp_path / "w" / f"{POSETRACK.stem}.side.mp4").stat().st_size > 1000


def test_two_pass_with_nothing_worth_keeping_writes_null_frames_without_re_extracting(
        flat_video, fakes, tmp_path, monkeypatch):
    class Small(FakeTracker):  # people 20 px tall in a 120 px frame: preprocess's small-person filter
        def __call__(self, frame, hint=None):
            people = super().__call__(frame, hint)
            return People(people.xy[:1], people.conf[:1], people.boxes[:1], people.ids[:1]) if len(people) else people

    monkeypatch.setitem(estimators.OPENERS, "ultralytics", lambda spec, video: Small())
    cfg = ExtractConfig(estimator=EstimatorSpec("rtmlib", fakes),
                        fast=EstimatorSpec("ultralytics", fakes, option="--fast"))
    [result] = run_extract([flat_video], tmp_path / "out", cfg)
    assert (result.status, result.frames, result.with_person) == ("done", 150, 0)
    assert FakeAccurate.calls == []
    assert set(map(str, read_record(tmp_path / "out" / "walk.jsonl")["keypoints"])) == {"None"}
