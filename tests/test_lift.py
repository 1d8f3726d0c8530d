"""`k2m lift`: one frame per input frame, gaps filled, windows, round trips, scores equal to eval recon."""

import json

import numpy as np
import pytest
import torch

from k2m_core.body import load_body_model
from k2m_core.data.dataset import Dataset, DatasetWriter
from k2m_core.eval.recon import PoseScores, reconstruction_metrics
from k2m_core.export.motion_file import load_motion
from k2m_core.lift import _fade, _windows, fill_gaps, lift_keypoints
from k2m_core.loading import load_tokenizer

MINI = "k2m-mini"


def test_gaps_are_interpolated_per_keypoint_and_held_at_the_ends():
    xy = np.zeros((6, 17, 2), np.float32)
    conf = np.zeros((6, 17), np.float32)
    present = np.array([False, True, False, False, True, False])
    xy[1], xy[4] = 10.0, 40.0
    conf[1], conf[4] = 0.9, 0.6
    filled_xy, filled_conf = fill_gaps(xy, conf, present)
    np.testing.assert_allclose(filled_xy[:, 0, 0], [10, 10, 20, 30, 40, 40])
    np.testing.assert_allclose(filled_conf[:, 3], [0.9, 0.9, 0.8, 0.7, 0.6, 0.6], rtol=1e-6)


def test_windows_cover_every_frame_and_their_weights_cross_fade():
    spans = _windows(300, 128, 32)
    assert spans[0][0] == 0 and spans[-1][1] == 300
    total = np.zeros(300)
    for start, stop in spans:
        weight = _fade(start, stop, spans)
        assert (weight > 0).all()
        total[start:stop] += weight
    assert len(spans) == 3 and all(b_start < a_stop for (_, a_stop), (b_start, _) in zip(spans, spans[1:]))
    np.testing.assert_allclose(total, 1.0)  # the fades of neighbours add up: a plain average nowhere
    assert _windows(100, 128, 32) == [(0, 100)]


def test_long_inputs_decode_without_seams():
    """A long clip decoded in windows matches a one-window decode away from the windows' edges and
    has no jump where windows meet."""
    tokenizer = load_tokenizer(load_mini_vq())
    ds = Dataset(small_corpus_path())
    clip = int(np.argmax(ds.lengths))
    keypoints, focal = ds.keypoints(clip), float(ds.focals[clip])
    whole = lift_keypoints(tokenizer, keypoints, focal, window=1024)
    # lift's own windows (128 frames, 32 shared): three of them over this 300-frame clip. The 3D
    # recipe's tokenizer leans on context more than the previous one (64-frame windows: 7.5 cm from
    # the whole-clip decode, against 4.0 cm before; these: 4.2 against 2.1 cm).
    windowed = lift_keypoints(tokenizer, keypoints, focal)
    assert len(keypoints) >= 300
    assert windowed.joints.shape == whole.joints.shape == (len(keypoints), 24, 3)
    relative = lambda j: j - j[:, :1]  # noqa: E731
    error = np.linalg.norm(relative(windowed.joints) - relative(whole.joints), axis=-1).mean()
    assert error < 0.05  # metres: windows see less context, but the same body
    steps = np.linalg.norm(np.diff(relative(windowed.joints), axis=0), axis=-1).mean(-1)
    assert steps.max() < 10 * np.median(steps) + 0.02


_CACHE = {}


def load_mini_vq():
    from k2m_core.lift import resolve_tokenizer

    return resolve_tokenizer(MINI)


def small_corpus_path():
    if "corpus" not in _CACHE:
        import tempfile

        from k2m_core.synth.corpus import SynthConfig, write_corpus

        out = tempfile.mkdtemp()
        write_corpus(out, 6, SynthConfig(seed=11))
        _CACHE["corpus"] = f"{out}/dataset.h5"
    return _CACHE["corpus"]


def test_lift_of_a_dataset_clip_scores_as_eval_recon(k2m, tmp_path):
    """The PA-MPJPE of the lifted motion file (z-up world frame: Procrustes removes that) equals
    eval recon's on the same clip."""
    ds = Dataset(small_corpus_path())
    clip, frames = 0, 120  # one window: lift and recon decode exactly the same frames
    one = tmp_path / "one.h5"
    with DatasetWriter(one) as writer:
        writer.add_clip(ds.ids[clip], ds.keypoints(clip)[:frames], ds.captions(clip), focal=float(ds.focals[clip]),
                        gt_frames={"joints": ds.ground_truth("joints", clip)[:frames]})
    result = k2m("lift", "--data", one, "--clip", ds.ids[clip], "--tokenizer", MINI, "--out", tmp_path / "out",
                 "--format", "npz,bvh", "--json")
    assert result.code == 0, result.err
    record = json.loads(result.out)[0]
    assert record["frames"] == frames and record["filled_frames"] == []
    body = load_body_model("skeleton").double()
    motion = load_motion(tmp_path / "out" / f"{ds.ids[clip]}.npz", body)
    lifted = motion.pose(body).joints
    scores = PoseScores(ds.fps)
    scores.add(lifted, torch.from_numpy(ds.ground_truth("joints", clip)[:frames]).double())
    tokenizer = load_tokenizer(load_mini_vq())
    recon = reconstruction_metrics(tokenizer, Dataset(one), "train", torch.device("cpu"))
    assert scores.summary()["pa_mpjpe_mm"] == pytest.approx(recon["pa_mpjpe_mm"], abs=0.5)
    # The BVH holds the same motion.
    bvh = load_motion(tmp_path / "out" / f"{ds.ids[clip]}.bvh", body)
    assert len(bvh) == len(motion)
    np.testing.assert_allclose(bvh.poses, motion.poses, atol=1e-3)


def test_lift_estimator_file_with_gaps_gives_one_frame_per_input_frame(k2m, tmp_path):
    ds = Dataset(small_corpus_path())
    clip = ds.keypoints(0)
    keypoints, scores = clip[:, :17, :2].copy(), clip[:, :17, 2].copy()
    nobody = [0, 5, 6, 7, len(clip) - 1]
    keypoints[nobody], scores[nobody] = 0.0, 0.0
    width, height = clip[0, 17, :2]
    np.savez(tmp_path / "walk.npz", keypoints=keypoints, scores=scores, fps=25.0,
             size=np.array([width, height]))
    result = k2m("lift", tmp_path / "walk.npz", "--tokenizer", MINI, "--out", tmp_path / "out", "--json")
    assert result.code == 0, result.err
    record = json.loads(result.out)[0]
    assert record["frames"] == len(clip) and record["fps"] == 25.0
    assert record["filled_frames"] == nobody
    saved = json.loads((tmp_path / "out" / "walk.json").read_text())
    assert saved["filled_frames"] == nobody
    motion = load_motion(tmp_path / "out" / "walk.npz", load_body_model("skeleton").double())
    assert len(motion) == len(clip) and motion.fps == 25.0 and np.isfinite(motion.poses).all()
    # A second run does not overwrite without --force.
    again = k2m("lift", tmp_path / "walk.npz", "--tokenizer", MINI, "--out", tmp_path / "out")
    assert again.code == 2 and "--force" in again.err


@pytest.mark.parametrize("args, message", [
    ([], "give keypoint files"),
    (["--data", "x.h5"], "--clip"),
    (["--clip", "a"], "--data"),
    (["in.npz", "--tokenizer", "nowhere"], "--tokenizer nowhere"),
    (["in.npz", "--format", "fbx"], "--format"),
    (["in.npz", "--focal", "-3"], "--focal"),
    (["in.npz", "--focal", "900", "--fov", "60"], "not both"),
    (["missing.npz"], "no such file"),
])
def test_bad_lift_input_is_one_line_and_exit_2(k2m, tmp_path, args, message):
    np.savez(tmp_path / "in.npz", keypoints=np.zeros((3, 17, 2)))
    paths = [str(tmp_path / a) if a.endswith(".npz") else a for a in args]
    result = k2m("lift", *paths, "--out", tmp_path / "out")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert not (tmp_path / "out").exists()
