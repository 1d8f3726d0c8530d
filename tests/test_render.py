"""`k2m render`, video previews from `k2m gen`, and frame-rate resampling of exports."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from k2m_core.body import load_body_model
from k2m_core.body.smpl_file import write_random_smpl_model
from k2m_core.export.amass import read_amass_npz, write_amass_npz
from k2m_core.export.resample import resample_motion, resample_times
from k2m_core.export.world import Y_UP_TO_Z_UP, rotate_motion
from k2m_core.render.draw import BACKGROUND
from k2m_core.render.scene import Camera, render_motion, side_by_side
from k2m_core.rotations import axis_angle_to_matrix
from k2m_core.synth.motions import generate_motion


def world_motion(family="walk", seed=0, frames=None):
    """A synthetic motion in the z-up world frame: (poses, trans, betas, joints)."""
    motion = generate_motion([family], np.random.default_rng(seed), num_frames=frames)
    body = load_body_model(None).double()
    betas = torch.from_numpy(motion.betas).double()
    rest = body.rest_joints(betas[None])[0].numpy()
    poses, trans = rotate_motion(motion.poses, motion.transl, rest[0], Y_UP_TO_Z_UP)
    joints = body.forward_axis_angle(torch.from_numpy(poses), betas[None].expand(len(poses), 10),
                                     torch.from_numpy(trans)).joints.numpy()
    return poses, trans, motion.betas, joints


def read_video(path):
    return iio.imread(path, index=None, extension=path.suffix)


def gif_seconds(path):
    """A GIF's playing time (GIF merges identical consecutive frames, so count time, not frames)."""
    from PIL import Image

    with Image.open(path) as gif:
        total = 0
        for k in range(gif.n_frames):
            gif.seek(k)
            total += gif.info["duration"]
    return total / 1000


def body_pixels(frame):
    """Pixels that are neither background nor grid/shadow grey: the drawn body."""
    distance = np.abs(frame.astype(int) - np.array(BACKGROUND)).sum(-1)
    saturation = frame.max(-1).astype(int) - frame.min(-1)
    return ((distance > 150) | (saturation > 60)).sum()


def test_render_motion_draws_every_frame_and_follows_the_body():
    poses, trans, betas, joints = world_motion("walk", frames=90)
    frames = render_motion(joints, camera=Camera(size=128))
    assert frames.shape == (90, 128, 128, 3) and frames.dtype == np.uint8
    assert all(body_pixels(f) > 150 for f in frames)  # a body in every frame
    assert np.abs(frames[0].astype(int) - frames[-1]).sum() > 0  # and it moves
    # The following camera keeps the walker near the centre although it travels metres.
    assert np.linalg.norm(joints[-1, 0, :2] - joints[0, 0, :2]) > 1.0
    for frame in (frames[0], frames[-1]):
        ys, xs = np.nonzero((frame.max(-1).astype(int) - frame.min(-1)) > 60)
        assert 32 < xs.mean() < 96


def test_side_by_side_holds_the_shorter_clip():
    a = np.zeros((5, 8, 6, 3), np.uint8)
    b = np.full((3, 8, 4, 3), 200, np.uint8)
    both = side_by_side([a, b], gap=2)
    assert both.shape == (5, 8, 12, 3)
    assert (both[4, :, 8:] == 200).all()


def test_mesh_rendering_with_a_smpl_model(tmp_path):
    smpl = load_body_model(write_random_smpl_model(tmp_path / "SMPL_NEUTRAL.npz")).double()
    poses, trans, betas, _ = world_motion("wave", frames=60)
    out = smpl.forward_axis_angle(torch.from_numpy(poses[:3]), torch.from_numpy(betas).double()[None].expand(3, 10),
                                  torch.from_numpy(trans[:3]), with_vertices=True)
    camera = Camera(size=128)
    mesh = render_motion(out.joints.numpy(), vertices=out.vertices.numpy(), faces=smpl.faces.numpy(), camera=camera)
    bones = render_motion(out.joints.numpy(), camera=camera)
    assert body_pixels(mesh[0]) > 1.5 * body_pixels(bones[0])  # a mesh covers more than its bones


def test_resample_keeps_duration_and_rotations():
    angles = np.linspace(0, 1.0, 31)  # 1 s at 30 fps: a steady turn of 1 rad about x
    poses = np.zeros((31, 72))
    poses[:, 0] = angles
    trans = np.stack([angles, np.zeros(31), np.zeros(31)], axis=1)
    p60, t60 = resample_motion(poses, trans, 30, 60)
    assert len(p60) == 61 and np.allclose(p60[:, 0], np.linspace(0, 1.0, 61), atol=1e-9)
    assert np.allclose(t60[:, 0], np.linspace(0, 1.0, 61))
    back, _ = resample_motion(p60, t60, 60, 30)
    assert np.allclose(back, poses, atol=1e-9)
    assert len(resample_times(150, 30, 25)) == 125  # 149/30 s at 25 fps: frames 0…124
    # Slerp takes the short way across ±π: 170° and −170° about z meet at 180°, not 0°.
    turn = np.zeros((2, 72))
    turn[:, 2] = np.radians([170.0, -170.0])
    mid, _ = resample_motion(turn, np.zeros((2, 3)), 1, 2)
    rot = axis_angle_to_matrix(torch.from_numpy(mid[1, :3]))
    assert np.isclose(float(torch.arccos((torch.trace(rot) - 1) / 2)), np.pi, atol=1e-6)


@pytest.fixture()
def motion_files(tmp_path):
    paths = []
    for i, (family, frames) in enumerate((("jump", 75), ("kick", 60))):
        poses, trans, betas, joints = world_motion(family, seed=i, frames=frames)
        path = tmp_path / f"m{i}.npz"
        write_amass_npz(path, poses, trans, betas, joints, 30.0, text=f"a person does a {family}")
        paths.append(path)
    return paths


def test_render_cli_side_by_side_mp4_and_gif(k2m, motion_files, tmp_path):
    result = k2m("render", *motion_files, "--out", tmp_path / "both.mp4", "--size", "96")
    assert result.code == 0, result.err
    video = read_video(tmp_path / "both.mp4")
    assert video.shape[0] == 75 and video.shape[1] == 96 and video.shape[2] >= 2 * 96
    assert body_pixels(video[10, :, :96]) > 50 and body_pixels(video[10, :, -96:]) > 50
    result = k2m("render", motion_files[1], "--out", tmp_path / "kick.gif", "--size", "96", "--fps", "15")
    assert result.code == 0, result.err
    assert gif_seconds(tmp_path / "kick.gif") == pytest.approx(2.0)  # 60 frames at 30 fps → 30 at 15 fps


def test_render_cli_bvh_and_mesh(k2m, motion_files, tmp_path):
    assert k2m("export", motion_files[0], "--to", "bvh", "--out", tmp_path).code == 0
    result = k2m("render", tmp_path / "m0.bvh", "--size", "64", "--body-model",
                 write_random_smpl_model(tmp_path / "SMPL_NEUTRAL.npz"))
    assert result.code == 0, result.err
    assert read_video(tmp_path / "m0.mp4").shape[0] == 75


@pytest.mark.parametrize("args,message", [
    (["--out", "x.avi"], "write .mp4 or .gif"),
    (["--clip", "a"], "--clip and --video"),
    (["--size", "10"], "--size"),
])
def test_render_cli_errors(k2m, motion_files, tmp_path, args, message):
    result = k2m("render", motion_files[0], *args)
    assert result.code == 2 and message in result.err, result.err
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*tmp*"))


def test_render_cli_keeps_existing_output(k2m, motion_files, tmp_path):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"precious")
    result = k2m("render", motion_files[0], "--out", target)
    assert result.code == 2 and "--force" in result.err and target.read_bytes() == b"precious"


def test_render_dataset_clip_over_its_video(k2m, tmp_path):
    assert k2m("-q", "data", "synth", "--out", tmp_path / "sy", "--clips", "1", "--formats", "npz", "--seed", "1").code == 0
    data = tmp_path / "p.h5"
    result = k2m("-q", "preprocess", tmp_path / "sy/keypoints/npz", "--captions", tmp_path / "sy/captions.jsonl",
                 "--out", data, "--no-lower-body", "--min-visible", "0.3")
    assert result.code == 0, result.err
    from k2m_core.data.dataset import Dataset

    dataset = Dataset(data)
    clip, length = dataset.ids[0], int(dataset.lengths[0])
    source = json.loads(dataset.sources[0])
    assert k2m("render", data, "--out", tmp_path / "x.mp4").code == 2  # no --clip
    assert "did you mean" in k2m("render", data, "--clip", clip[:-2], "--out", tmp_path / "x.mp4").err
    assert k2m("render", data, "--clip", clip, "--out", tmp_path / "kp.mp4", "--size", "128").code == 0
    assert read_video(tmp_path / "kp.mp4").shape[0] == length

    green = np.zeros((source["frames"][1] + 1, 64, 36, 3), np.uint8)
    green[..., 1] = 160
    iio.imwrite(tmp_path / "source.mp4", green, extension=".mp4", fps=30, macro_block_size=1)
    result = k2m("render", data, "--clip", clip, "--video", tmp_path / "source.mp4", "--out", tmp_path / "over.gif",
                 "--size", "128")
    assert result.code == 0, result.err
    over = read_video(tmp_path / "over.gif")
    assert gif_seconds(tmp_path / "over.gif") == pytest.approx(length / 30, abs=0.01)
    assert np.median(over[0, ..., 1]) > 120 and np.median(over[0, ..., 0]) < 40  # the video shows through
    short = green[:5]
    iio.imwrite(tmp_path / "short.mp4", short, extension=".mp4", fps=30, macro_block_size=1)
    result = k2m("render", data, "--clip", clip, "--video", tmp_path / "short.mp4", "--out", tmp_path / "no.gif")
    assert result.code == 2 and "video ends" in result.err and not (tmp_path / "no.gif").exists()


def test_gen_writes_videos_and_resampled_files(k2m, model_dir, tmp_path):
    result = k2m("gen", "a man jumps", "--frames", "90", "--model", model_dir, "--out", tmp_path,
                 "--format", "npz,mp4,gif", "--json")
    assert result.code == 0, result.err
    files = json.loads(result.out)[0]["files"]
    assert [f.rsplit(".", 1)[1] for f in files] == ["npz", "mp4", "gif"]
    frames = iio.imread(files[1], index=None)
    assert frames.shape[0] == 90 and body_pixels(frames[45]) > 30
    assert gif_seconds(files[2]) == pytest.approx(3.0)
    result = k2m("gen", "a man jumps", "--frames", "90", "--model", model_dir, "--out", tmp_path / "60",
                 "--format", "npz", "--fps", "60", "--json")
    motion = read_amass_npz(json.loads(result.out)[0]["files"][0])
    assert motion["fps"] == 60 and len(motion["poses"]) == 179  # 89/30 s at 60 fps
    base = read_amass_npz(files[0])
    assert np.allclose(motion["trans"][::2], base["trans"], atol=1e-5)
