import json

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image

from k2m_core.body.skeleton import SkeletonBody
from k2m_core.camera import project
from k2m_core.data.dataset import Dataset
from k2m_core.keypoints import focal_from_fov, validate_clip
from k2m_core.synth.camera_rig import VIEWPOINTS, View, place_in_frame
from k2m_core.synth.corpus import SynthConfig, synth_clip


def test_clips_are_deterministic_and_valid():
    config = SynthConfig(seed=5)
    a, b, other = synth_clip(3, config), synth_clip(3, config), synth_clip(3, SynthConfig(seed=6))
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.poses, b.poses)
    assert a.captions == b.captions and not np.array_equal(a.keypoints, other.keypoints)
    for i in range(12):
        clip = synth_clip(i, config)
        validate_clip(clip.keypoints, clip.clip_id)
        assert 60 <= len(clip.keypoints) <= 300
        width, height = clip.keypoints[0, 17, :2]
        seen = clip.keypoints[:, :17, 2] > 0
        xy = clip.keypoints[:, :17, :2][seen]
        assert (xy >= 0).all() and (xy[:, 0] < width).all() and (xy[:, 1] < height).all()
        assert seen.mean() > 0.9


def test_ground_truth_reprojects_onto_the_keypoints():
    body = SkeletonBody().to(torch.float64)
    for i in range(6):
        clip = synth_clip(i, SynthConfig(seed=1, noise_px=(0.0, 0.0), dropout_rate=0.0))
        frames = len(clip.poses)
        out = body.forward_axis_angle(torch.from_numpy(clip.poses).double(),
                                      torch.from_numpy(clip.betas).double().expand(frames, 10),
                                      torch.from_numpy(clip.transl).double())
        np.testing.assert_allclose(out.joints.numpy(), clip.joints, atol=1e-4)
        width, height = (float(v) for v in clip.keypoints[0, 17, :2])
        uv, in_front = project(out.keypoints, width, height, focal=clip.view.focal)
        assert in_front.all() and clip.view.focal < 5000
        np.testing.assert_allclose(uv.numpy(), clip.keypoints[:, :17, :2], atol=0.05)
        # Upright in the camera frame: the head is above (smaller y than) the ankles.
        assert (clip.joints[:, 15, 1] < clip.joints[:, 7, 1]).mean() > 0.9


def test_viewpoints_follow_table_7():
    counts = {name: 0 for name in VIEWPOINTS}
    for i in range(300):
        rng_clip = synth_clip(i, SynthConfig(seed=2, families=("idle",)))
        counts[rng_clip.viewpoint] += 1
    for name, (share, _) in VIEWPOINTS.items():
        assert abs(counts[name] / 300 - share) < 0.08, counts


def test_front_and_back_views_put_the_left_side_where_it_belongs():
    config = SynthConfig(seed=3, families=("idle",), yaw_jitter_deg=0.0)
    for i in range(40):
        clip = synth_clip(i, config)
        left_shoulder_x, right_shoulder_x = clip.keypoints[:, 5, 0].mean(), clip.keypoints[:, 6, 0].mean()
        if clip.viewpoint == "front":  # facing the camera: their left is on the image's right
            assert left_shoulder_x > right_shoulder_x
        elif clip.viewpoint == "back":
            assert left_shoulder_x < right_shoulder_x


def test_synth_command(k2m, tmp_path):
    out = tmp_path / "corpus"
    result = k2m("--quiet", "data", "synth", "--out", out, "--clips", "5", "--seed", "4", "--preview", "1")
    assert result.code == 0, result.err
    ds = Dataset(out / "dataset.h5")
    assert len(ds) == 5 and set(ds.ground_truth_frames) == {"joints", "poses", "transl"}
    assert ds.ground_truth_clips == ["betas"]
    captions = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert [c["video"] for c in captions] == ds.ids and captions[0]["captions"] == ds.captions(0)
    meta = [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]
    assert [m["frames"] for m in meta] == ds.lengths.tolist()
    gif = iio.imread(out / "previews" / f"{ds.ids[0]}.gif", index=None)
    with Image.open(out / "previews" / f"{ds.ids[0]}.gif") as image:  # identical frames are stored once
        played_ms = sum(image.seek(k) or image.info["duration"] for k in range(image.n_frames))
    assert abs(played_ms - 1000 * ds.lengths[0] / ds.fps) <= 10 and gif.std() > 1  # the whole clip, not blank
    again = k2m("data", "synth", "--out", out, "--clips", "5")
    assert again.code == 2 and "--force" in again.err
    assert k2m("data", "synth", "--out", tmp_path / "x", "--families", "walk,moonwalk").code == 2
    # Each clip's camera is stored, and clips.jsonl records it (principal point at the centre).
    np.testing.assert_allclose([m["focal"] for m in meta], ds.focals, rtol=1e-6)
    assert len(set(ds.focals.tolist())) == 5
    for m, i in zip(meta, range(len(ds))):
        assert m["principal_point"] == [m["width"] / 2, m["height"] / 2]
        assert [m["width"], m["height"]] == ds.keypoints(i)[0, 17, :2].tolist()
    paper = k2m("--quiet", "data", "synth", "--out", tmp_path / "paper", "--clips", "3", "--focal", "5000")
    assert paper.code == 0, paper.err
    np.testing.assert_array_equal(Dataset(tmp_path / "paper" / "dataset.h5").focals, [5000.0] * 3)
    assert k2m("data", "synth", "--out", tmp_path / "bad", "--focal", "-3").code == 2


def test_cameras_are_realistic_and_keep_the_body_in_frame():
    """Field of view 40–75° across the long side, the body 2.5–8 m away unless its path needs
    more room, every keypoint inside the image; a fixed focal puts the paper's camera back."""
    depths, fovs = [], []
    for i in range(40):
        clip = synth_clip(i, SynthConfig(seed=8, noise_px=(0.0, 0.0), dropout_rate=0.0))
        view = clip.view
        fov = 2 * np.degrees(np.arctan(max(view.width, view.height) / 2 / view.focal))
        assert 40 - 1e-6 <= fov <= 75 + 1e-6
        assert view.focal == focal_from_fov(fov, view.width, view.height) or abs(
            view.focal - focal_from_fov(fov, view.width, view.height)) < 1e-6
        assert (clip.keypoints[:, :17, 2] > 0).all()  # nothing dropped: all inside the frame
        pelvis = clip.joints[:, 0, 2]
        if np.ptp(clip.joints[:, 0], axis=0).max() < 0.5:  # stays in place: the range must hold
            assert 2.3 <= np.median(pelvis) <= 8.2, (i, np.median(pelvis))  # (it is the body's centre's)
        depths.append(np.median(pelvis))
        fovs.append(fov)
    assert np.ptp(fovs) > 20 and np.median(depths) < 6
    paper = synth_clip(0, SynthConfig(seed=8, focal=5000.0))
    assert paper.view.focal == 5000.0 and np.median(paper.joints[:, 0, 2]) > 8


def test_paths_along_the_optical_axis_stay_near_the_camera():
    """A 40 m run straight at the camera: placed with its near end in front of the camera and its
    far end where the body is still tens of pixels tall (a bug once put such clips ~1000 km away)."""
    frames = 120
    track = np.linspace(-20.0, 20.0, frames)
    body = np.stack([np.zeros(17), np.linspace(-0.85, 0.85, 17), np.zeros(17)], axis=1)  # a 1.7 m pole
    points = body[None] + np.stack([np.zeros(frames), np.zeros(frames), track], axis=1)[:, None]
    for seed in range(20):
        for focal, distance in ((5000.0, (0.0, np.inf)), (1400.0, (2.5, 8.0))):
            view = View("front", 0.0, 0.0, focal, 1920, 1080, distance)
            offset = place_in_frame(points, view, (0.45, 0.85), np.random.default_rng(seed))
            z = points[..., 2] + offset[2]
            assert z.min() >= 1.0 - 1e-9 and z.max() < 100.0
            assert focal * 1.7 / z.max() > 20  # pixels of body height at the far end
