"""Export: world frame, AMASS-style .npz and .bvh checked against an independent BVH reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from k2m_core import __version__
from k2m_core.body import load_body_model
from k2m_core.body.kinematics import FEET, HEAD, JOINT_NAMES
from k2m_core.errors import UserError
from k2m_core.export import (
    Y_UP_TO_Z_UP, camera_to_world, read_amass_npz, rotate_motion, write_amass_npz, write_bvh,
)
from k2m_core.rotations import matrix_to_axis_angle


@pytest.fixture(scope="module")
def body():
    return load_body_model("skeleton")


def _rot(axis: str, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return {"X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def _axis_angle(matrix: np.ndarray) -> np.ndarray:
    return matrix_to_axis_angle(torch.as_tensor(matrix, dtype=torch.float64)).numpy()


def read_bvh(path) -> tuple[list[str], list[int], np.ndarray, list[list[str]], np.ndarray, float]:
    """Minimal independent BVH reader: names, parents, offsets, channels, motion rows, frame time."""
    tokens = open(path).read().split()
    names, parents, offsets, channels, stack, i = [], [], [], [], [], 0
    while tokens[i] != "MOTION":
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            names.append(tokens[i + 1])
            parents.append(stack[-1] if stack else -1)
            i += 2
        elif tok == "End":  # End Site { OFFSET x y z }
            assert tokens[i + 1] == "Site" and tokens[i + 2] == "{" and tokens[i + 3] == "OFFSET"
            assert tokens[i + 7] == "}"
            i += 8
        elif tok == "{":
            stack.append(len(names) - 1)
            i += 1
        elif tok == "}":
            stack.pop()
            i += 1
        elif tok == "OFFSET":
            offsets.append([float(v) for v in tokens[i + 1:i + 4]])
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            channels.append(tokens[i + 2:i + 2 + n])
            i += 2 + n
        else:
            i += 1  # HIERARCHY
    frames = int(tokens[i + 2])
    frame_time = float(tokens[i + 5])
    values = np.array(tokens[i + 6:], dtype=np.float64)
    return names, parents, np.array(offsets), channels, values.reshape(frames, -1), frame_time


def bvh_joints(path) -> tuple[list[str], np.ndarray]:
    """Forward kinematics of a BVH file; joint positions in metres (file is in cm)."""
    names, parents, offsets, channels, motion, _ = read_bvh(path)
    out = np.zeros((len(motion), len(names), 3))
    for f, row in enumerate(motion):
        col, world_rot, world_pos = 0, [], []
        for j, chans in enumerate(channels):
            local_rot, local_pos = np.eye(3), offsets[j].copy()
            pos_from_channels = np.zeros(3)
            for ch in chans:
                if ch.endswith("position"):
                    pos_from_channels["XYZ".index(ch[0])] = row[col]
                else:  # channels compose left to right: R = R_first · R_second · R_third
                    local_rot = local_rot @ _rot(ch[0], row[col])
                col += 1
            local_pos = local_pos + pos_from_channels
            if parents[j] < 0:
                world_rot.append(local_rot)
                world_pos.append(local_pos)
            else:
                p = parents[j]
                world_pos.append(world_pos[p] + world_rot[p] @ local_pos)
                world_rot.append(world_rot[p] @ local_rot)
        out[f] = world_pos
    return names, out / 100.0


def _random_motion(rng, frames, betas_scale=1.0):
    poses = rng.normal(0, 0.4, (frames, 72))
    transl = rng.normal(0, 0.5, (frames, 3))
    return poses, transl, rng.normal(0, betas_scale, 10)


def _special_roots() -> list[np.ndarray]:
    """Global orientations: sideways, lying (pitch 90°), upside down, and Euler gimbal-adjacent."""
    mats = [_rot("Y", 90), _rot("X", 90), _rot("Z", 90) @ _rot("Y", -90), _rot("X", 180), _rot("Z", 180),
            _rot("Y", 90 - 1e-4) @ _rot("X", 30), _rot("Z", 40) @ _rot("Y", -90 + 1e-7) @ _rot("X", -20),
            _rot("Y", 90), _rot("Z", 10) @ _rot("Y", 89.99)]
    return [_axis_angle(m) for m in mats]


def _body_joints(body, poses, transl, betas) -> np.ndarray:
    with torch.no_grad():
        return body.forward_axis_angle(
            torch.as_tensor(poses, dtype=torch.float64), torch.as_tensor(betas, dtype=torch.float64)
            .expand(len(poses), 10), torch.as_tensor(transl, dtype=torch.float64)).joints.numpy()


def test_bvh_reproduces_body_joints(body, tmp_path):
    rng = np.random.default_rng(0)
    poses, transl, betas = _random_motion(rng, 40)
    roots = _special_roots()
    poses[:len(roots), :3] = roots
    # Gimbal-adjacent local joints too: pitch exactly and nearly ±90° on knees, elbows, spine.
    for f, (joint, pitch) in enumerate([(4, 90), (18, -90), (3, 90 - 1e-5), (19, -90 + 1e-3), (15, 89.9)]):
        poses[10 + f, 3 * joint:3 * joint + 3] = _axis_angle(_rot("Z", 25) @ _rot("Y", pitch) @ _rot("X", -35))
    rest = body.rest_joints(torch.as_tensor(betas, dtype=torch.float64)[None])[0].numpy()
    path = tmp_path / "m.bvh"
    write_bvh(path, poses, transl, rest, fps=30)

    names, parents, offsets, channels, motion, frame_time = read_bvh(path)
    assert sorted(names) == sorted(JOINT_NAMES) and len(motion) == 40
    assert frame_time == pytest.approx(1 / 30)
    assert channels[0] == ["Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation"]
    assert all(c == ["Zrotation", "Yrotation", "Xrotation"] for c in channels[1:])
    assert open(path).read().count("End Site") == 5  # head, two hands, two feet
    _, joints = bvh_joints(path)
    order = [names.index(n) for n in JOINT_NAMES]
    expected = _body_joints(body, poses, transl, betas)
    assert np.abs(joints[:, order] - expected).max() < 1e-3


def test_npz_keys_shapes_dtypes_and_read(body, tmp_path):
    rng = np.random.default_rng(1)
    poses, transl, betas = _random_motion(rng, 12)
    joints = _body_joints(body, poses, transl, betas)
    path = tmp_path / "m.npz"
    write_amass_npz(path, poses, transl, betas, joints, fps=30, text="a person waves", seed=7)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp file left behind
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == {"poses", "trans", "betas", "gender", "mocap_framerate",
                                  "mocap_frame_rate", "surface_model_type", "joints", "text", "seed",
                                  "k2m_version"}
        for key, shape in (("poses", (12, 72)), ("trans", (12, 3)), ("betas", (10,)), ("joints", (12, 24, 3))):
            assert npz[key].shape == shape and npz[key].dtype == np.float32
        assert str(npz["gender"]) == "neutral" and str(npz["surface_model_type"]) == "smpl"
        assert float(npz["mocap_framerate"]) == float(npz["mocap_frame_rate"]) == 30.0
        assert str(npz["text"]) == "a person waves" and int(npz["seed"]) == 7
        assert str(npz["k2m_version"]) == __version__
    data = read_amass_npz(path)
    np.testing.assert_allclose(data["poses"], poses, atol=1e-6)
    assert data["fps"] == 30.0 and data["seed"] == 7 and data["joints"].shape == (12, 24, 3)
    write_amass_npz(path, poses, transl, betas, joints, fps=20)
    assert read_amass_npz(path)["seed"] is None


def test_read_smplh_and_bad_files(tmp_path):
    rng = np.random.default_rng(2)
    poses = rng.normal(size=(5, 156))
    path = tmp_path / "h.npz"
    np.savez(path, poses=poses, trans=np.zeros((5, 3)), betas=np.ones(16), gender="male",
             mocap_frame_rate=np.array(60.0))
    data = read_amass_npz(path)
    assert data["poses"].shape == (5, 72) and data["betas"].shape == (10,) and data["fps"] == 60.0
    np.testing.assert_allclose(data["poses"][:, :66], poses[:, :66], atol=1e-6)
    assert not data["poses"][:, 66:].any()

    np.savez(tmp_path / "norate.npz", poses=poses, trans=np.zeros((5, 3)))
    with pytest.raises(UserError, match="frame rate"):
        read_amass_npz(tmp_path / "norate.npz")
    np.savez(tmp_path / "shape.npz", poses=np.zeros((5, 70)), trans=np.zeros((5, 3)), mocap_framerate=30.0)
    with pytest.raises(UserError, match="poses has shape"):
        read_amass_npz(tmp_path / "shape.npz")
    np.savez(tmp_path / "trans.npz", poses=np.zeros((5, 72)), trans=np.zeros((4, 3)), mocap_framerate=30.0)
    with pytest.raises(UserError, match="trans has shape"):
        read_amass_npz(tmp_path / "trans.npz")
    with pytest.raises(UserError, match="no such file"):
        read_amass_npz(tmp_path / "missing.npz")


@pytest.mark.parametrize("up", ["y", "z"])
def test_world_frame(body, up):
    rng = np.random.default_rng(3)
    frames = 8
    poses = rng.normal(0, 0.1, (frames, 72))
    poses[:, :3] = _axis_angle(_rot("X", 180))  # standing upright in front of the camera
    transl = np.array([0.3, 0.2, 4.0]) + rng.normal(0, 0.05, (frames, 3))
    betas = rng.normal(0, 1, 10)
    w_poses, w_transl, joints = camera_to_world(poses, transl, betas, body, up=up)
    height = 1 if up == "y" else 2
    horizontal = [a for a in range(3) if a != height]
    assert joints[:, list(FEET), height].min() == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(joints[0, 0, horizontal], 0, atol=1e-9)
    assert (joints[:, HEAD, height] > joints[:, 0, height] + 0.3).all()  # upright: head well above pelvis
    np.testing.assert_allclose(joints, _body_joints(body, w_poses, w_transl, betas), atol=1e-9)
    # A rigid transform of the camera-frame motion: relative joint geometry is preserved.
    cam = _body_joints(body, poses, transl, betas)
    dist = lambda j: np.linalg.norm(j[:, :, None] - j[:, None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(dist(joints), dist(cam), atol=1e-9)


def test_round_trip_npz_bvh(body, tmp_path):
    rng = np.random.default_rng(4)
    poses, transl, betas = _random_motion(rng, 10)
    poses[:, :3] = _axis_angle(_rot("X", 180) @ _rot("Y", 70))
    w_poses, w_transl, joints = camera_to_world(poses, transl, betas, body, up="z")
    write_amass_npz(tmp_path / "m.npz", w_poses, w_transl, betas, joints, fps=30)
    data = read_amass_npz(tmp_path / "m.npz")
    rest = body.rest_joints(torch.as_tensor(data["betas"], dtype=torch.float64)[None])[0].numpy()
    y_poses, y_transl = rotate_motion(data["poses"], data["trans"], rest[0], Y_UP_TO_Z_UP.T)  # z-up → y-up
    write_bvh(tmp_path / "m.bvh", y_poses, y_transl, rest, fps=data["fps"])
    names, bvh = bvh_joints(tmp_path / "m.bvh")
    order = [names.index(n) for n in JOINT_NAMES]
    np.testing.assert_allclose(bvh[:, order] @ Y_UP_TO_Z_UP.T, data["joints"], atol=1e-3)
