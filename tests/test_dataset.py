import pickle

import numpy as np
import pytest

from k2m_core.data.dataset import Dataset, DatasetWriter, assign_splits
from k2m_core.errors import UserError
from k2m_core.keypoints import make_clip


def random_clip(rng, frames, width=1280, height=720):
    return make_clip(rng.uniform(0, width, (frames, 17, 2)), rng.uniform(0, 1, (frames, 17)), width, height)


def write_dataset(path, n=30, seed=0):
    rng = np.random.default_rng(seed)
    clips = []
    with DatasetWriter(path, split_seed=7, creation_command="test") as writer:
        for i in range(n):
            clip = random_clip(rng, 60 + i)
            clips.append(clip)
            writer.add_clip(f"clip{i:03d}", clip, [f"a person does thing {i}.", "second caption"],
                            source=f"video{i // 3}.json:person0:0-{59 + i}", video=f"video{i // 3}",
                            gt_frames={"joints": np.full((60 + i, 24, 3), i, np.float32)},
                            gt_clip={"betas": np.full(10, i, np.float32)})
    return clips


def test_round_trip(tmp_path):
    clips = write_dataset(tmp_path / "d.h5")
    ds = Dataset(tmp_path / "d.h5")
    assert len(ds) == 30 and ds.fps == 30.0 and ds.total_frames == sum(len(c) for c in clips)
    for i in (0, 13, 29):
        np.testing.assert_array_equal(ds.keypoints(i), clips[i])
        np.testing.assert_array_equal(ds.keypoints(i, start=5, length=10), clips[i][5:15])
        assert ds.captions(i) == [f"a person does thing {i}.", "second caption"]
        assert ds.ground_truth("joints", i).shape == (60 + i, 24, 3) and ds.ground_truth("joints", i)[0, 0, 0] == i
        assert ds.ground_truth("betas", i)[0] == i
    assert ds.index_of("clip013") == 13
    assert ds.attrs["creation_command"] == "test" and ds.attrs["keypoint_layout"] == "coco17+size"
    with pytest.raises(UserError, match="no ground truth"):
        ds.ground_truth("nothing", 0)


def test_splits_group_by_video_and_are_deterministic(tmp_path):
    write_dataset(tmp_path / "a.h5")
    write_dataset(tmp_path / "b.h5")
    a, b = Dataset(tmp_path / "a.h5"), Dataset(tmp_path / "b.h5")
    all_idx = np.concatenate([a.splits[s] for s in ("train", "val", "test")])
    assert sorted(all_idx.tolist()) == list(range(30))
    videos = {s: {a.videos[i] for i in a.splits[s]} for s in ("train", "val", "test")}
    assert not videos["train"] & videos["val"] and not videos["train"] & videos["test"] and not videos["val"] & videos["test"]
    assert all(len(v) > 0 for v in videos.values())
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(a.splits[s], b.splits[s])
    other = assign_splits(a.videos, seed=8)
    assert any(not np.array_equal(other[s], a.splits[s]) for s in ("train", "val", "test"))


def test_interrupted_write_leaves_nothing(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError):
        with DatasetWriter(tmp_path / "d.h5") as writer:
            writer.add_clip("a", random_clip(rng, 40), ["x"])
            raise RuntimeError("power cut")
    assert list(tmp_path.iterdir()) == []


def test_bad_clips_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "d.h5") as writer:
        writer.add_clip("a", random_clip(rng, 40), ["x"])
        with pytest.raises(UserError, match="duplicate"):
            writer.add_clip("a", random_clip(rng, 40), ["y"])
        with pytest.raises(UserError, match="caption"):
            writer.add_clip("b", random_clip(rng, 40), ["  "])
        bad = random_clip(rng, 40)
        bad[3, 2, 2] = 2.0
        with pytest.raises(UserError, match="confidence"):
            writer.add_clip("c", bad, ["z"])
    assert len(Dataset(tmp_path / "d.h5")) == 1
    with pytest.raises(UserError, match="no clips"):
        DatasetWriter(tmp_path / "empty.h5").close()
    assert not (tmp_path / "empty.h5").exists()


def test_reader_survives_pickling_and_rejects_non_datasets(tmp_path):
    write_dataset(tmp_path / "d.h5", n=5)
    ds = Dataset(tmp_path / "d.h5")
    first = ds.keypoints(0)
    clone = pickle.loads(pickle.dumps(ds))  # what a DataLoader worker receives
    np.testing.assert_array_equal(clone.keypoints(0), first)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="not a k2m dataset"):
        Dataset(tmp_path / "junk.h5")
    with pytest.raises(UserError, match="no such dataset"):
        Dataset(tmp_path / "missing.h5")


def test_focal_length_per_clip(tmp_path):
    rng = np.random.default_rng(3)
    with DatasetWriter(tmp_path / "f.h5") as writer:
        writer.add_clip("near", random_clip(rng, 40), ["x"], focal=1100.0)
        writer.add_clip("paper", random_clip(rng, 40), ["y"])
        with pytest.raises(UserError, match="focal length"):
            writer.add_clip("bad", random_clip(rng, 40), ["z"], focal=float("nan"))
    ds = Dataset(tmp_path / "f.h5")
    np.testing.assert_array_equal(ds.focals, [1100.0, 5000.0])


def test_file_without_focal_reads_as_paper_camera(tmp_path):
    import h5py

    write_dataset(tmp_path / "d.h5", n=4)
    with h5py.File(tmp_path / "d.h5", "a") as f:
        del f["clip_focal"]
    np.testing.assert_array_equal(Dataset(tmp_path / "d.h5").focals, np.full(4, 5000.0))


def test_clips_may_have_no_caption(tmp_path):
    from k2m_core.preprocess.validate import validate_dataset

    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "d.h5") as writer:
        writer.add_clip("a", random_clip(rng, 60), [])
        writer.add_clip("b", random_clip(rng, 60), ["walks", "strolls"])
        writer.add_clip("c", random_clip(rng, 60), [])
        with pytest.raises(UserError, match="caption is empty"):
            writer.add_clip("d", random_clip(rng, 60), ["runs", " "])
    ds = Dataset(tmp_path / "d.h5")
    assert [ds.captions(i) for i in range(3)] == [[], ["walks", "strolls"], []]
    assert ds.captioned(np.arange(3)).tolist() == [1] and ds.captioned([0, 2]).tolist() == []
    assert validate_dataset(tmp_path / "d.h5") == []
