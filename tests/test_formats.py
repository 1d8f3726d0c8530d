import json
from pathlib import Path

import numpy as np
import pytest

from k2m_core.preprocess.detections import FormatError
from k2m_core.preprocess.formats import Unit, discover, read_unit, video_id, write_k2m_jsonl
from k2m_core.preprocess.formats.arrays import read_pose_array, write_pose_npz
from k2m_core.preprocess.formats.coco import read_coco, write_coco_results
from k2m_core.preprocess.formats.k2m_jsonl import iter_k2m_jsonl, plan_chunks
from k2m_core.preprocess.formats.layouts import BODY_25_TO_COCO, COCO_18_TO_COCO, from_coco17, to_coco17
from k2m_core.preprocess.formats.mmpose import read_mmpose, write_mmpose_json
from k2m_core.preprocess.formats.openpose import read_openpose_folder, write_openpose_folder
from k2m_core.preprocess.procedural import walking_figure

REAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"


def two_people(frames=20):
    """Person 0 everywhere; person 1 (smaller) missing in frame 3."""
    xy0, c0 = walking_figure(frames, seed=1)
    xy1, c1 = walking_figure(frames, seed=2, person_height=0.4)
    c0[5, 2] = 0.0  # one missing keypoint
    c1[3] = 0.0     # person 1 absent in frame 3
    return np.stack([xy0, xy1], 1), np.stack([c0, c1], 1)


def as_people_per_frame(det):
    """Detections → {frame: sorted list of (xy, conf)} for comparing layouts."""
    out = {}
    for f, xy, c in zip(det.frame, det.xy, det.conf):
        out.setdefault(int(f), []).append((xy, c))
    return out


def expected(xy, conf):
    """What a reader must return for writer input: missing keypoints canonical (0, 0, 0)."""
    xy = np.where(conf[..., None] > 0, xy, 0).astype(np.float32)
    return xy, conf.astype(np.float32)


def check_round_trip(det, xy, conf):
    xy, conf = expected(xy, conf)
    per_frame = as_people_per_frame(det)
    assert sorted(per_frame) == list(range(len(xy)))
    for f in range(len(xy)):
        want = [(xy[f, n], conf[f, n]) for n in range(xy.shape[1]) if conf[f, n].any()]
        got = per_frame[f]
        assert len(got) == len(want)
        for (gx, gc), (wx, wc) in zip(sorted(got, key=lambda p: p[0][0, 0]), sorted(want, key=lambda p: p[0][0, 0])):
            np.testing.assert_array_equal(gx, wx)
            np.testing.assert_array_equal(gc, wc)


@pytest.mark.parametrize("kind", ["coco", "coco26", "coco133", "openpose", "openpose18", "mmpose", "mmpose-demo", "npz"])
def test_writers_and_readers_round_trip_exactly(tmp_path, kind):
    xy, conf = two_people()
    if kind.startswith("coco"):
        path = write_coco_results(tmp_path / "v.json", xy, conf, num_keypoints=int(kind[4:] or 17))
        det = read_coco(path, "v")
    elif kind.startswith("openpose"):
        path = write_openpose_folder(tmp_path / "v", xy, conf, layout="COCO-18" if kind.endswith("18") else "BODY_25",
                                     video_id="v")
        det = read_openpose_folder(path, "v")
        assert len(list(path.iterdir())) == len(xy)  # one file per frame
    elif kind.startswith("mmpose"):
        layout = "instance_info" if kind.endswith("demo") else "predictions"
        path = write_mmpose_json(tmp_path / "v.json", xy, conf, layout=layout)
        det = read_mmpose(path, "v")
    else:
        path = write_pose_npz(tmp_path / "v.npz", xy, conf, fps=25, width=640, height=480)
        det = read_pose_array(path, "v")
        assert det.fps == 25 and det.size.tolist() == [[640, 480]] * len(det)
    check_round_trip(det, xy, conf)
    assert det.video == "v"


def test_k2m_jsonl_round_trip_and_null_frames(tmp_path):
    xy, conf = walking_figure(12, fps=25)
    conf[4] = 0  # nobody in frame 4 → written as null
    path = write_k2m_jsonl(tmp_path / "p.jsonl", [
        {"video": "a", "xy": xy, "conf": conf, "fps": 25, "width": 1280, "height": 720, "start_frame": 100},
        {"video": "b", "xy": xy[:5], "conf": conf[:5], "fps": 30, "width": 640, "height": 480, "focal": 777.5}])
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["keypoints"][4] is None
    a, b = list(iter_k2m_jsonl(path))
    assert (a.video, a.fps, b.video, b.fps) == ("a", 25.0, "b", 30.0)
    assert (a.focal, b.focal) == (None, 777.5)
    assert a.frame.tolist() == [100 + i for i in range(12) if i != 4]
    assert a.declared.tolist() == list(range(100, 112))
    np.testing.assert_array_equal(a.xy, expected(xy, conf)[0][conf.any(1)])
    assert a.size[0].tolist() == [1280, 720]


def test_jsonl_chunks_cover_every_record_once(tmp_path):
    records = [{"video": f"v{i}", "xy": np.full((3, 17, 2), i + 1.0), "conf": np.ones((3, 17)), "fps": 30,
                "width": 100, "height": 100} for i in range(40)]
    path = write_k2m_jsonl(tmp_path / "many.jsonl", records)
    chunks = plan_chunks(path, chunk_bytes=700)
    assert len(chunks) > 5 and chunks[0][0] == 0 and chunks[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    videos = [d.video for a, b in chunks for d in iter_k2m_jsonl(path, a, b)]
    assert videos == [f"v{i}" for i in range(40)]


def test_layout_tables_match_reference():
    # docs/design.md#ref-formats: BODY_25 and COCO-18 indices of COCO-17 nose…right_ankle
    assert BODY_25_TO_COCO == (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
    assert COCO_18_TO_COCO == (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
    xy = np.arange(17 * 2, dtype=float).reshape(1, 17, 2) + 1
    conf = np.ones((1, 17))
    op_xy, op_c = from_coco17(xy, conf, "BODY_25")
    np.testing.assert_array_equal(op_xy[0, 1], (xy[0, 5] + xy[0, 6]) / 2)  # neck = mid-shoulders
    np.testing.assert_array_equal(op_xy[0, 8], (xy[0, 11] + xy[0, 12]) / 2)  # mid-hip
    np.testing.assert_array_equal(to_coco17(op_xy), xy)
    np.testing.assert_array_equal(to_coco17(np.zeros((2, 26, 3)))[..., 0], np.zeros((2, 17)))
    with pytest.raises(FormatError) as info:
        to_coco17(np.zeros((1, 19, 3)))
    assert info.value.reason == "keypoint-count"


def test_coco_file_name_ids_and_frame_regex(tmp_path):
    xy, conf = walking_figure(6)
    names = [f"cam2_take3_{i * 2:04d}.jpg" for i in range(6)]  # every second frame was kept
    det = read_coco(write_coco_results(tmp_path / "v.json", xy, conf, image_ids=names), "v")
    assert det.frame.tolist() == [0, 2, 4, 6, 8, 10]
    det = read_coco(tmp_path / "v.json", "v", frame_regex=r"take(\d)")
    assert det.frame.tolist() == [3] * 6  # the regex decides, even when it makes nonsense
    shuffled = ["b.jpg", "a.jpg", "d.jpg", "c.jpg", "f.jpg", "e.jpg"]  # no numbers: name order
    det = read_coco(write_coco_results(tmp_path / "w.json", xy, conf, image_ids=shuffled), "w")
    np.testing.assert_array_equal(det.xy[0], xy[1])


def test_npz_variants(tmp_path):
    xy, conf = walking_figure(8)
    # ultralytics-style (F, N, 17, 3) with the score as third channel, NaN padding, orig_shape (H, W)
    data = np.full((8, 3, 17, 3), np.nan, np.float32)
    data[:, 0, :, :2], data[:, 0, :, 2] = xy, conf
    np.savez(tmp_path / "u.npz", keypoints=data, orig_shape=np.array([720, 1280]), fps=np.array(60.0))
    det = read_pose_array(tmp_path / "u.npz", "u")
    assert len(det) == 8 and det.fps == 60 and det.size[0].tolist() == [1280, 720]
    np.testing.assert_array_equal(det.conf, conf)
    # rtmlib-style Halpe-26 with separate scores, frame ids with a gap
    halpe = np.zeros((8, 26, 2), np.float32)
    halpe[:, :17] = xy
    np.savez(tmp_path / "r.npz", keypoints=halpe, scores=np.pad(conf, ((0, 0), (0, 9))),
             frame_ids=np.arange(8) + (np.arange(8) >= 4) * 10)
    det = read_pose_array(tmp_path / "r.npz", "r")
    assert det.frame.tolist() == [0, 1, 2, 3, 14, 15, 16, 17] and det.size is None and det.fps is None
    # .npy positions only: every keypoint present counts as certain
    np.save(tmp_path / "p.npy", xy)
    det = read_pose_array(tmp_path / "p.npy", "p")
    assert (det.conf == 1).all()


def test_real_coco_annotation_sample():
    det = read_coco(REAL / "coco_person_keypoints_sample.json", "coco")
    data = json.loads((REAL / "coco_person_keypoints_sample.json").read_text())
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    people = [a for a in data["annotations"] if a["num_keypoints"] > 0]
    assert len(det) == len(people) and sorted(set(det.frame.tolist())) == sorted(sizes)
    for f, s in zip(det.frame, det.size):
        assert tuple(s) == sizes[int(f)]
    assert set(np.unique(det.conf).tolist()) <= {0.0, 0.5, 1.0}
    first = people[0]
    row = next(i for i in range(len(det)) if det.frame[i] == first["image_id"]
               and det.xy[i, 0, 0] == first["keypoints"][0])
    np.testing.assert_array_equal(det.xy[row, :, 0], [first["keypoints"][3 * k] if first["keypoints"][3 * k + 2] else 0
                                                       for k in range(17)])


def test_real_coco17_running_clip():
    """The running clip as rtmlib-style COCO-17 arrays (its 26-row sibling is GLAMR's body26fk, not
    Halpe-26: its first 17 rows are not COCO-17)."""
    det = read_pose_array(REAL / "running_coco17_2d.npz", "running")
    raw = np.load(REAL / "running_coco17_2d.npz")
    assert det.fps == 30 and det.size is None and len(det) == 203
    assert det.focal == 1000.0  # from its intrinsics cam_K
    seen = raw["scores"] > 0
    np.testing.assert_array_equal(det.conf > 0, seen)
    np.testing.assert_array_equal(det.xy[seen], raw["keypoints"][seen])
    assert (det.conf[:, :5] == 0).all() and (det.conf[:, 5:] > 0).all()  # no face; shoulders to ankles
    y = det.xy[..., 1]  # image y grows downwards: shoulders above hips above ankles in every frame
    assert (y[:, [5, 6]].mean(1) < y[:, [11, 12]].mean(1)).all() and (y[:, [11, 12]] < y[:, [15, 16]]).all()


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b'[{"image_id": 0, "keypoints": [1, 2', "unreadable"),
    (b'\xff\xfe[]', "unreadable"),
    (b'[{"image_id": 0, "category_id": 1, "keypoints": [1, 2, 0.5, 3, 4, 0.5]}]', "keypoint-count"),
    (b'[{"image_id": 0, "keypoints": [' + b"1, 2, 1.5, " * 16 + b'1, 2, 1.5]}]', "confidence-range"),
    (b'[{"image_id": 0, "keypoints": [' + b"1, 2, 0.5, " * 16 + b'NaN, 2, 0.5]}]', "non-finite"),
    (b'{"people": []}', "unknown-format"),
    (b'{"hello": "world"}', "unknown-format"),
    (b'[{"frame_id": 0, "instances": [{"keypoints": [[1, 2]], "keypoint_scores": [1]}]}]', "keypoint-count"),
    (b'[{"frame_id": "x", "instances": []}]', "malformed"),
])
def test_bad_json_files_get_a_reason(tmp_path, content, reason):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    (item,) = list(read_unit(Unit(path, "json"), None))
    assert isinstance(item, FormatError) and item.reason == reason, item


def test_bad_arrays_and_records(tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((5, 19, 3)))
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04garbage")
    xy, conf = walking_figure(4)
    write_pose_npz(tmp_path / "neg.npz", xy, -conf)
    reasons = {p.stem: next(read_unit(Unit(p, "npz"), None)).reason
               for p in (tmp_path / "wrong.npy", tmp_path / "trunc.npz", tmp_path / "neg.npz")}
    assert reasons == {"wrong": "keypoint-count", "trunc": "unreadable", "neg": "confidence-range"}
    record = {"video": "ok", "fps": 30, "width": 10, "height": 10, "keypoints": [[[1, 1, 1]] * 17]}
    ragged = dict(record, video="ragged", keypoints=[[[1, 1]] + [[1, 1, 1]] * 16])
    lines = [json.dumps(record), "{not json", json.dumps({"video": "x", "fps": 30}), json.dumps(ragged),
             json.dumps(dict(record, video="f", focal=-1)), json.dumps(dict(record, video="g", focal="wide"))]
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n")
    items = list(read_unit(Unit(tmp_path / "p.jsonl", "jsonl"), None))
    assert [getattr(i, "reason", i.video if not isinstance(i, FormatError) else None) for i in items] == \
        ["ok", "unreadable", "malformed", "keypoint-count", "malformed", "malformed"]
    np.savez(tmp_path / "k.npz", keypoints=xy, cam_K=np.eye(2))
    assert next(read_unit(Unit(tmp_path / "k.npz", "npz"), None)).reason == "malformed"
    write_pose_npz(tmp_path / "f.npz", xy, conf, focal=1234.0)
    assert next(read_unit(Unit(tmp_path / "f.npz", "npz"), None)).focal == 1234.0


def test_openpose_gap_and_empty_frames(tmp_path):
    xy, conf = walking_figure(6)
    conf[2] = 0  # frame 2 has nobody (file with empty people)
    folder = write_openpose_folder(tmp_path / "clip", xy, conf, video_id="clip")
    (folder / "clip_000000000004_keypoints.json").unlink()  # frame 4 lost
    det = read_openpose_folder(folder, "clip")
    assert det.frame.tolist() == [0, 1, 3, 5] and det.declared.tolist() == [0, 1, 2, 3, 5]


def test_discovery_and_video_ids(tmp_path):
    xy, conf = walking_figure(4)
    write_pose_npz(tmp_path / "in" / "a.npz", xy, conf)
    write_openpose_folder(tmp_path / "in" / "sub" / "b", xy, conf, video_id="b")
    write_coco_results(tmp_path / "in" / "c" / "alphapose-results.json", xy, conf)
    write_k2m_jsonl(tmp_path / "in" / "d.jsonl", [{"video": "d", "xy": xy, "conf": conf, "fps": 30, "width": 9,
                                                   "height": 9}])
    (tmp_path / "in" / "notes.txt").write_text("ignored")
    (tmp_path / "in" / "captions.jsonl").write_text("{}")
    units = discover([tmp_path / "in"], "auto", {tmp_path / "in" / "captions.jsonl"}, 1 << 20)
    kinds = {u.path.relative_to(tmp_path / "in").as_posix(): u.kind for u in units}
    assert kinds == {"a.npz": "npz", "sub/b": "openpose", "c/alphapose-results.json": "json", "d.jsonl": "jsonl"}
    assert video_id(tmp_path / "in" / "c" / "alphapose-results.json") == "c"
    assert video_id(tmp_path / "in" / "sub" / "b") == "b"
    assert [u.kind for u in discover([tmp_path / "in"], "npz", set(), 1 << 20)] == ["npz"]
    (item,) = list(read_unit(discover([tmp_path / "in" / "notes.txt"], "auto", set(), 1)[0], None))
    assert item.reason == "unknown-format"
