"""`k2m data info`, `k2m data validate`, `k2m data merge`."""

import json
import shutil

import h5py
import numpy as np
import pytest
from test_preprocess_support import cli

from k2m_core.data.dataset import Dataset, DatasetWriter
from k2m_core.keypoints import make_clip
from k2m_core.preprocess.procedural import walking_figure


def build(path, n=6, seed=0, prefix="c", gt=False):
    """``n`` clips of 60–110 frames from ``n // 2`` videos, two captions on even clips."""
    clips = []
    with DatasetWriter(path, split_seed=1, creation_command="test") as writer:
        for i in range(n):
            xy, conf = walking_figure(60 + 10 * i, seed=seed + i)
            conf[::7, 9] = 0.1  # some low-confidence wrists
            clip = make_clip(xy, conf, 1280, 720)
            clips.append(clip)
            captions = [f"a person walks {'fast' if i % 2 else 'slowly'}"] + (["someone strolls"] if i % 2 == 0 else [])
            extra = {"gt_frames": {"joints": np.zeros((len(clip), 24, 3))}, "gt_clip": {"betas": np.zeros(10)}} if gt else {}
            writer.add_clip(f"{prefix}{i}", clip, captions, source=f"src{i}", video=f"{prefix}v{i // 2}", **extra)
    return clips


def test_info_reports_counts_captions_and_keypoint_velocity(capsys, tmp_path):
    clips = build(tmp_path / "d.h5")
    code, out, err = cli(capsys, "data", "info", tmp_path / "d.h5", "--json")
    assert code == 0, err
    stats = json.loads(out)
    frames = sum(len(c) for c in clips)
    assert (stats["clips"], stats["videos"], stats["frames"]) == (6, 3, frames)
    assert stats["hours"] == pytest.approx(frames / 30 / 3600)
    assert stats["clip_seconds"]["min"] == 2.0 and stats["clip_seconds"]["max"] == pytest.approx(110 / 30)
    assert stats["captions"]["total"] == 9 and stats["captions"]["per_clip"] == {"1": 3, "2": 3}
    assert stats["captions"]["vocabulary"] == len({"a", "person", "walks", "fast", "slowly", "someone", "strolls"})
    assert sum(s["clips"] for s in stats["splits"].values()) == 6
    assert stats["frame_sizes"] == {"1280x720": 6}
    # Fig. 6: mean pixel speed per keypoint over consecutive confident frames within clips
    for k, name in ((9, "left_wrist"), (15, "left_ankle")):
        steps = []
        for clip in clips:
            ok = (clip[1:, k, 2] >= 0.5) & (clip[:-1, k, 2] >= 0.5)
            steps.append(np.linalg.norm(clip[1:, k, :2] - clip[:-1, k, :2], axis=-1)[ok])
        assert stats["keypoint_velocity_px_s"][name] == pytest.approx(np.concatenate(steps).mean() * 30, abs=0.01)
    assert stats["keypoint_velocity_px_s"]["left_ankle"] > stats["keypoint_velocity_px_s"]["left_hip"]
    code, out, _ = cli(capsys, "data", "info", tmp_path / "d.h5")
    assert code == 0 and "vocabulary 7" in out and "left_ankle" in out and "Fig. 6" in out


def corrupt(path, edit):
    with h5py.File(path, "r+") as f:
        edit(f)


def replace(f, name, data, **kwargs):
    del f[name]
    f.create_dataset(name, data=data, **kwargs)


CORRUPTIONS = {
    "NaN": (lambda f: f["keypoints"].__setitem__((70, 3, 0), np.nan), "NaN or inf"),
    "confidence": (lambda f: f["keypoints"].__setitem__((5, 2, 2), 1.5), "confidence outside [0, 1]"),
    "size changes": (lambda f: f["keypoints"].__setitem__((100, 17, 0), 640), "changes within the clip"),
    "size row": (lambda f: f["keypoints"].__setitem__((0, 17, 2), 0.5), "row 17"),
    "duplicate id": (lambda f: replace(f, "clip_ids", ["c0"] * 6, dtype=h5py.string_dtype()), "occurs more than once"),
    "offsets": (lambda f: replace(f, "clip_offsets", np.array([0, 60, 50, 200, 300, 400, 600])), "clip_offsets"),
    "video in two splits": (lambda f: (replace(f, "splits/train", np.array([0, 2, 3, 4, 5])),
                                       replace(f, "splits/val", np.array([1])), replace(f, "splits/test", np.array([], np.int64))),
                            "is in splits"),
    "clip in no split": (lambda f: replace(f, "splits/train", f["splits/train"][1:]), "in no split"),
    "empty caption": (lambda f: replace(f, "captions", [""] * 9, dtype=h5py.string_dtype()), "caption 0 is empty"),
    "missing": (lambda f: f.__delitem__("clip_video"), "missing dataset"),
    "attribute": (lambda f: f.attrs.__delitem__("fps"), "'fps' is missing"),
    "features": (lambda f: f.create_dataset("text_features/clip", data=np.zeros((3, 4), np.float16)), "text_features/clip"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_validate_finds_each_violation(capsys, tmp_path, name):
    build(tmp_path / "ok.h5")
    code, out, err = cli(capsys, "data", "validate", tmp_path / "ok.h5")
    assert code == 0 and out.strip().endswith(": ok"), err
    bad = tmp_path / "bad.h5"
    shutil.copy(tmp_path / "ok.h5", bad)
    edit, message = CORRUPTIONS[name]
    corrupt(bad, edit)
    code, out, err = cli(capsys, "data", "validate", bad)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "violation" in lines[-1]
    assert any(message in line for line in lines[:-1]), err


def test_validate_rejects_short_clips_and_non_hdf5(capsys, tmp_path):
    with DatasetWriter(tmp_path / "short.h5") as writer:
        writer.add_clip("a", make_clip(np.zeros((30, 17, 2)), np.ones((30, 17)), 10, 10), ["x"])
    code, _, err = cli(capsys, "data", "validate", tmp_path / "short.h5")
    assert code == 2 and "2–10 s" in err
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    code, _, err = cli(capsys, "data", "validate", tmp_path / "junk.h5")
    assert code == 2 and "not an HDF5 file" in err
    code, _, err = cli(capsys, "data", "validate", tmp_path / "nothing.h5")
    assert code == 2 and "no such dataset file" in err


def test_merge_combines_shards_and_carries_ground_truth(capsys, tmp_path):
    a = build(tmp_path / "a.h5", n=4, prefix="a", gt=True)
    b = build(tmp_path / "b.h5", n=4, seed=10, prefix="b", gt=True)
    code, out, err = cli(capsys, "data", "merge", tmp_path / "a.h5", tmp_path / "b.h5", "--out", tmp_path / "m.h5")
    assert code == 0, err and "8 clips" in out
    merged = Dataset(tmp_path / "m.h5")
    assert merged.ids == [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)]
    for i, clip in enumerate(a + b):
        np.testing.assert_array_equal(merged.keypoints(i), clip)
    assert merged.captions(4) == Dataset(tmp_path / "b.h5").captions(0)
    assert merged.ground_truth_frames == ["joints"] and merged.ground_truth_clips == ["betas"]
    assert merged.attrs["creation_command"].startswith("k2m data merge")
    assert cli(capsys, "data", "validate", tmp_path / "m.h5")[0] == 0
    code, _, err = cli(capsys, "data", "merge", tmp_path / "a.h5", tmp_path / "a.h5", "--out", tmp_path / "x.h5")
    assert code == 2 and "given twice" in err
    shutil.copy(tmp_path / "a.h5", tmp_path / "a2.h5")
    code, _, err = cli(capsys, "data", "merge", tmp_path / "a.h5", tmp_path / "a2.h5", "--out", tmp_path / "x.h5")
    assert code == 2 and "'a0' is in both" in err and not (tmp_path / "x.h5").exists()
    code, _, err = cli(capsys, "data", "merge", tmp_path / "a.h5", tmp_path / "b.h5", "--out", tmp_path / "m.h5")
    assert code == 2 and "--force" in err


def test_chunked_scans_agree_with_one_pass(tmp_path, monkeypatch):
    from k2m_core.preprocess import info, validate

    build(tmp_path / "d.h5")
    whole = info.dataset_info(tmp_path / "d.h5")
    monkeypatch.setattr(info, "CHUNK_FRAMES", 37)  # chunk edges fall inside clips and on clip starts
    chunked = info.dataset_info(tmp_path / "d.h5")
    assert chunked == whole
    monkeypatch.setattr(validate, "CHUNK_FRAMES", 37)
    assert validate.validate_dataset(tmp_path / "d.h5") == []
    corrupt(tmp_path / "d.h5", lambda f: f["keypoints"].__setitem__((74, 17, 1), 100))  # clip 1, inside a chunk edge
    assert any("changes within the clip" in v for v in validate.validate_dataset(tmp_path / "d.h5"))


def test_mirror_caption_swaps_direction_words_only():
    from k2m_core.data.mirror import mirror_caption

    assert mirror_caption("a man walks to the left, then turns right") == "a man walks to the right, then turns left"
    assert mirror_caption("Left hand up; spins counterclockwise, then clockwise") == \
        "Right hand up; spins clockwise, then counterclockwise"
    assert mirror_caption("walks leftwards, jogs rightward") == "walks rightwards, jogs leftward"
    assert mirror_caption("a person claps, leftover bright lights") == "a person claps, leftover bright lights"


def test_mirror_adds_twins_in_the_same_split_with_mirrored_truth(capsys, tmp_path):
    from k2m_core.body.kinematics import MIRROR as SMPL_MIRROR

    clips = build(tmp_path / "d.h5", n=6)
    with h5py.File(tmp_path / "d.h5", "a") as f:  # direction words in one caption
        captions = f["captions"].asstr()[:].tolist()
        captions[0] = "a person walks to the left"
        del f["captions"]
        f.create_dataset("captions", data=captions, dtype=h5py.string_dtype())
    with DatasetWriter(tmp_path / "g.h5", split_seed=1) as writer:  # ground truth joints
        joints = np.random.default_rng(0).normal(size=(60, 24, 3))
        writer.add_clip("g0", clips[0], ["turns left"], gt_frames={"joints": joints})
    code, out, err = cli(capsys, "data", "mirror", tmp_path / "d.h5", "--out", tmp_path / "m.h5")
    assert code == 0, err
    assert "12 clips" in out and "1 with direction words swapped" in out
    original, mirrored = Dataset(tmp_path / "d.h5"), Dataset(tmp_path / "m.h5")
    assert mirrored.ids == [i for c in original.ids for i in (c, c + "~mirrored")]
    assert mirrored.captions(1) == ["a person walks to the right", "someone strolls"]
    assert mirrored.captions(0) == original.captions(0)
    twin = mirrored.keypoints(1)
    np.testing.assert_allclose(twin[:, 5, 0], 1280 - clips[0][:, 6, 0], atol=1e-3)  # left shoulder ← right, flipped
    np.testing.assert_array_equal(twin[:, 5, 1:], clips[0][:, 6, 1:])
    for split in ("train", "val", "test"):  # twins stay with their originals; originals keep their split
        ids = [mirrored.ids[i] for i in mirrored.splits[split]]
        assert sorted(i for i in ids if not i.endswith("~mirrored")) == sorted(original.ids[i] for i in original.splits[split])
        assert sorted(i[:-len("~mirrored")] for i in ids if i.endswith("~mirrored")) == sorted(
            i for i in ids if not i.endswith("~mirrored"))
    assert cli(capsys, "data", "validate", tmp_path / "m.h5")[0] == 0
    # 3D truth: x negated, left and right joints exchanged.
    assert cli(capsys, "data", "mirror", tmp_path / "g.h5", "--out", tmp_path / "gm.h5")[0] == 0
    truth = Dataset(tmp_path / "gm.h5").ground_truth("joints", 1)
    np.testing.assert_allclose(truth[:, 1], joints[:, 2] * [-1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(truth[:, 0], joints[:, 0] * [-1, 1, 1], atol=1e-6)
    assert sorted(SMPL_MIRROR) == list(range(24)) and all(SMPL_MIRROR[SMPL_MIRROR[j]] == j for j in range(24))
    # Refusals: an existing output, a file already mirrored, a missing input; nothing half-written.
    code, _, err = cli(capsys, "data", "mirror", tmp_path / "d.h5", "--out", tmp_path / "m.h5")
    assert code == 2 and "--force" in err
    code, _, err = cli(capsys, "data", "mirror", tmp_path / "m.h5", "--out", tmp_path / "mm.h5")
    assert code == 2 and "already holds mirrored clips" in err and not (tmp_path / "mm.h5").exists()
    code, _, err = cli(capsys, "data", "mirror", tmp_path / "nope.h5", "--out", tmp_path / "x.h5")
    assert code == 2 and "nope.h5" in err and not (tmp_path / "x.h5").exists()
