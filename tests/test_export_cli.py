"""`k2m export` as a user runs it: npz → bvh → npz keeps the motion; AMASS SMPL+H files convert."""

import numpy as np
import torch

from k2m_core.body import load_body_model
from k2m_core.export.amass import read_amass_npz, write_amass_npz
from k2m_core.export.world import camera_to_world
from k2m_core.synth.corpus import SynthConfig, synth_clip


def k2m_motion(path, index=0):
    clip = synth_clip(index, SynthConfig(seed=9))
    body = load_body_model("skeleton").to(torch.float64)
    poses, transl, joints = camera_to_world(clip.poses, clip.transl, np.zeros(10), body, up="z")
    write_amass_npz(path, poses, transl, np.zeros(10), joints, 30.0, text=clip.captions[0], seed=9)
    return joints


def test_npz_to_bvh_to_npz_keeps_joints(k2m, tmp_path):
    joints = k2m_motion(tmp_path / "walk.npz")
    result = k2m("export", tmp_path / "walk.npz", "--to", "bvh", "--out", tmp_path / "out")
    assert result.code == 0, result.err
    bvh = tmp_path / "out" / "walk.bvh"
    assert bvh.read_text().startswith("HIERARCHY") and "JOINT left_knee" in bvh.read_text()
    assert k2m("export", bvh, "--to", "npz").code == 0
    back = read_amass_npz(tmp_path / "out" / "walk.npz")
    assert back["fps"] == 30.0 and back["poses"].shape == (len(joints), 72)
    np.testing.assert_allclose(back["joints"], joints, atol=1e-3)  # 1 mm


def test_amass_smplh_file_converts(k2m, tmp_path):
    rng = np.random.default_rng(0)
    frames = 12
    np.savez(tmp_path / "amass.npz", poses=rng.normal(0, 0.2, (frames, 156)), trans=rng.normal(0, 0.1, (frames, 3)),
             betas=np.zeros(16), gender="female", mocap_frame_rate=np.float64(120.0))
    assert k2m("export", tmp_path / "amass.npz", "--to", "bvh").code == 0
    text = (tmp_path / "amass.bvh").read_text()
    assert "Frames: 12" in text and "Frame Time: 0.00833333" in text


def test_export_errors(k2m, tmp_path):
    k2m_motion(tmp_path / "m.npz")
    assert k2m("export", tmp_path / "m.npz", "--to", "bvh").code == 0
    again = k2m("export", tmp_path / "m.npz", "--to", "bvh")
    assert again.code == 2 and "--force" in again.err
    assert k2m("export", tmp_path / "m.npz", "--to", "fbx").code == 2
    assert k2m("export", tmp_path / "missing.npz", "--to", "bvh").code == 2
    (tmp_path / "other.bvh").write_text("HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Zrotation Yrotation Xrotation\n}\nMOTION\nFrames: 1\nFrame Time: 0.033\n0 0 0\n")
    bad = k2m("export", tmp_path / "other.bvh", "--to", "npz")
    assert bad.code == 2 and "not an SMPL BVH" in bad.err
