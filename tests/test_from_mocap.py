"""`k2m data from-mocap` on the real fixtures, and its readers on skeletons written for the test."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from k2m_core.body.kinematics import COCO_LIMB_JOINTS, COCO_LIMB_ROWS, JOINT_NAMES
from k2m_core.body.skeleton import SkeletonBody
from k2m_core.data.dataset import Dataset
from k2m_core.errors import UserError
from k2m_core.export.bvh import write_bvh
from k2m_core.mocap.bvh import UNITS, detect_unit, read_bvh
from k2m_core.mocap.corpus import MocapConfig, Piece, motion_clips, read_motion
from k2m_core.preprocess.detections import FormatError
from k2m_core.synth.camera_rig import VIEWPOINTS, project
from k2m_core.synth.motions import sample_motion

REAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"
CMU = [REAL / f"cmu_131_0{i}.bvh" for i in (1, 2, 3)]
AIST = REAL / "aistpp_gBR_sBM_cAll_d04_mBR0_ch01.pkl"


@pytest.fixture(scope="module")
def body():
    return SkeletonBody().to(torch.float64)


@pytest.fixture(scope="module")
def clean_dataset(tmp_path_factory):
    from k2m_cli.main import run

    out = tmp_path_factory.mktemp("mocap") / "clean.h5"
    with pytest.raises(SystemExit) as info:
        run(["-q", "data", "from-mocap", *map(str, CMU + [AIST]), "--out", str(out), "--views", "2", "--clean",
             "--seed", "3"])
    assert info.value.code == 0
    return Dataset(out)


def test_clean_keypoints_are_exactly_the_projection_of_the_stored_3d(clean_dataset):
    ds = clean_dataset
    # 131_01 (8.3 s) is one clip, 131_02/03 (10.4 s) and the AIST++ dance (12 s) two each; 2 views.
    assert len(ds) == 2 * 7 and ds.fps == 30.0
    assert set(ds.ground_truth_frames) == {"joints", "keypoints"}
    for i in range(len(ds)):
        kp, joints, points = ds.keypoints(i), ds.ground_truth("joints", i), ds.ground_truth("keypoints", i)
        assert 60 <= len(kp) <= 300 and joints.shape == (len(kp), 24, 3)
        width, height = kp[0, 17, :2]
        source = json.loads(ds.sources[i])
        assert source["focal"] == pytest.approx(float(ds.focals[i])) and [source["width"], source["height"]] == [
            width, height]
        assert 40 <= np.degrees(2 * np.arctan(max(width, height) / 2 / ds.focals[i])) <= 75
        np.testing.assert_allclose(project(points.astype(np.float64), float(ds.focals[i]), width, height),
                                   kp[:, :17, :2], atol=2e-3)
        assert (kp[:, :17, 2] == 1).all() and (points[..., 2] > 0).all()
        np.testing.assert_array_equal(points[:, list(COCO_LIMB_ROWS)], joints[:, list(COCO_LIMB_JOINTS)])
        assert (joints[:, 15, 1] < joints[:, 7, 1]).mean() > 0.95  # upright: head above ankles (y down)
    # Splits by source file: the views and clips of one take never land in two splits.
    split_of = {int(c): name for name, idx in ds.splits.items() for c in idx}
    by_video: dict[str, set] = {}
    for i, video in enumerate(ds.videos):
        by_video.setdefault(video, set()).add(split_of[i])
    assert sorted(by_video) == ["aistpp_gBR_sBM_cAll_d04_mBR0_ch01", "cmu_131_01", "cmu_131_02", "cmu_131_03"]
    assert all(len(s) == 1 for s in by_video.values())
    assert ds.captions(0) == [] and len(ds.captioned(np.arange(len(ds)))) == 0


def _handedness(joints: np.ndarray) -> np.ndarray:
    """Per frame, the sign of (left × up) · forward with forward from the feet (ankle → toe):
    +1 for a body, −1 for its mirror image — whatever the frame it is expressed in."""
    left = joints[:, 1] - joints[:, 2]
    up = joints[:, 12] - joints[:, 0]
    forward = (joints[:, 10] + joints[:, 11] - joints[:, 7] - joints[:, 8]) / 2
    return np.sign(np.einsum("fi,fi->f", np.cross(left, up), forward))


def test_handedness_survives_every_conversion(clean_dataset, body):
    # In the files' own axes, from their own joint names (independent of the SMPL mapping) …
    for path in CMU:
        raw = read_bvh(path)
        at = {name: raw.positions[:, raw.index(name)] for name in ("LeftHip", "RightHip", "Hips", "Neck",
                                                                    "LeftAnkle", "RightAnkle", "LeftToe", "RightToe")}
        sign = np.sign(np.einsum("fi,fi->f", np.cross(at["LeftHip"] - at["RightHip"], at["Neck"] - at["Hips"]),
                                 at["LeftToe"] + at["RightToe"] - at["LeftAnkle"] - at["RightAnkle"]))
        assert (sign > 0).mean() > 0.95, path.name
    # … and in every stored camera frame: the same body, never its reflection.
    ds = clean_dataset
    for i in range(len(ds)):
        assert (_handedness(ds.ground_truth("joints", i)) > 0).mean() > 0.95, ds.ids[i]
    # In 2D, facing the camera puts the body's left on the image's right; seen from behind, on its left.
    config = MocapConfig(clean=True, yaw_jitter_deg=0.0, views=40, seed=1)
    for path in (CMU[0], AIST):
        motion = read_motion(path, body, config)
        seen = set()
        for clip, _ in motion_clips(motion, path.stem, [Piece(0, len(motion.joints))], config):
            side = np.mean(clip.keypoints[:, 5, 0] - clip.keypoints[:, 6, 0])  # left − right shoulder
            viewpoint = clip.source["viewpoint"]
            if viewpoint in ("front", "back"):
                assert (side > 0) == (viewpoint == "front"), (path.name, clip.clip_id, viewpoint)
                seen.add(viewpoint)
        assert seen == {"front", "back"}


def test_views_seeds_and_table_7_shares(body):
    config = MocapConfig(views=300, seed=4)
    motion = read_motion(CMU[0], body, config)
    clips = [c for c, _ in motion_clips(motion, "cmu", [Piece(0, len(motion.joints))], config)]
    assert len(clips) == 300 and len({c.focal for c in clips}) == 300
    for name, (share, _) in VIEWPOINTS.items():
        assert abs(np.mean([c.source["viewpoint"] == name for c in clips]) - share) < 0.08, name
    again = [c for c, _ in motion_clips(motion, "cmu", [Piece(0, len(motion.joints))], MocapConfig(views=2, seed=4))]
    np.testing.assert_array_equal(again[1].keypoints, clips[1].keypoints)  # view k depends on (seed, clip id)
    other = next(motion_clips(motion, "cmu", [Piece(0, len(motion.joints))], MocapConfig(seed=5)))[0]
    assert not np.array_equal(other.keypoints, clips[0].keypoints)
    noisy = clips[0].keypoints
    assert 0 < (noisy[:, :17, 2] < 1).mean() and (noisy[:, :17, 2] > 0).mean() > 0.9  # estimator model


def _smpl_bvh(path: Path, body, seed: int = 0, fps: float = 30.0) -> np.ndarray:
    """Write a procedural SMPL motion as the BVH `k2m export` writes; return its joints (F, 24, 3)
    and COCO-17 keypoints in the BVH's world (y up, metres)."""
    motion = sample_motion(np.random.default_rng(seed), fps=fps)
    motion.betas[:2] = (1.5, -2.0)  # a taller body with shorter limbs: the mapping must not assume SMPL's mean
    betas = torch.from_numpy(motion.betas.astype(np.float64))[None]
    rest = body.rest_joints(betas)[0].numpy()
    write_bvh(path, motion.poses, motion.transl, rest, fps)
    out = body.forward_axis_angle(torch.from_numpy(motion.poses.astype(np.float64)),
                                  betas.expand(len(motion.poses), 10), torch.from_numpy(motion.transl.astype(np.float64)))
    return out.joints.numpy(), out.keypoints.numpy()


def _rename(path: Path, names: dict[str, str], out: Path, scale: float = 1.0) -> Path:
    """The BVH at ``path`` with joints renamed and lengths multiplied by ``scale``."""
    text = path.read_text()
    text = re.sub(r"(ROOT|JOINT) (\S+)", lambda m: f"{m.group(1)} {names.get(m.group(2), m.group(2))}", text)
    head, motion = text.split("MOTION")
    head = re.sub(r"OFFSET (\S+) (\S+) (\S+)", lambda m: "OFFSET " + " ".join(
        f"{float(v) * scale:.6f}" for v in m.groups()), head)
    lines = motion.strip().splitlines()
    frames = [" ".join([f"{float(v) * scale:.6f}" for v in row.split()[:3]] + row.split()[3:]) for row in lines[2:]]
    out.write_text(head + "MOTION\n" + "\n".join(lines[:2] + frames) + "\n")
    return out


MIXAMO = {"pelvis": "mixamorig:Hips", "left_hip": "mixamorig:LeftUpLeg", "right_hip": "mixamorig:RightUpLeg",
          "spine1": "mixamorig:Spine", "left_knee": "mixamorig:LeftLeg", "right_knee": "mixamorig:RightLeg",
          "spine2": "mixamorig:Spine1", "left_ankle": "mixamorig:LeftFoot", "right_ankle": "mixamorig:RightFoot",
          "spine3": "mixamorig:Spine2", "left_foot": "mixamorig:LeftToeBase", "right_foot": "mixamorig:RightToeBase",
          "neck": "mixamorig:Neck", "left_collar": "mixamorig:LeftShoulder", "right_collar": "mixamorig:RightShoulder",
          "head": "mixamorig:Head", "left_shoulder": "mixamorig:LeftArm", "right_shoulder": "mixamorig:RightArm",
          "left_elbow": "mixamorig:LeftForeArm", "right_elbow": "mixamorig:RightForeArm",
          "left_wrist": "mixamorig:LeftHand", "right_wrist": "mixamorig:RightHand",
          "left_hand": "mixamorig:LeftHandMiddle1", "right_hand": "mixamorig:RightHandMiddle1"}
DAZ = {"pelvis": "hip", "spine1": "abdomen", "spine2": "chest", "spine3": "chestUpper", "neck": "neck",
       "head": "head"} | {f"{side}_{part}": f"{side[0]}{name}" for side in ("left", "right") for part, name in
                          (("hip", "Thigh"), ("knee", "Shin"), ("ankle", "Foot"), ("foot", "Toe"),
                           ("collar", "Collar"), ("shoulder", "Shldr"), ("elbow", "ForeArm"), ("wrist", "Hand"),
                           ("hand", "Mid1"))}


@pytest.mark.parametrize("scheme, names, scale, unit", [
    ("mixamo", MIXAMO, 1.0, "cm"), ("daz", DAZ, 1 / 2.54, "inch"), ("joint-map", None, 0.01, "m")])
def test_bvh_skeletons_map_onto_smpl(tmp_path, body, scheme, names, scale, unit):
    """A SMPL body written under another skeleton's names (and unit) comes back as the same body:
    mapped joints and all 17 keypoints exactly, the placed collars within a few centimetres."""
    joints, keypoints = _smpl_bvh(tmp_path / "smpl.bvh", body)
    joint_map = None
    if names is None:  # a skeleton nobody knows, described by --joint-map
        from k2m_core.mocap.skeletons import load_joint_map

        names = {name: f"bone{k:02d}" for k, name in enumerate(JOINT_NAMES)}
        mapped = [j for j in JOINT_NAMES if j not in ("spine1", "spine2", "spine3", "left_collar", "right_collar")]
        (tmp_path / "map.toml").write_text("[joints]\n" + "".join(f'{j} = "{names[j]}"\n' for j in mapped))
        joint_map = load_joint_map(tmp_path / "map.toml")
        (tmp_path / "bad.toml").write_text('pelvis = "bone00"\nleft_hand_thumb = "x"\n')
        with pytest.raises(UserError, match="left_hand_thumb"):
            load_joint_map(tmp_path / "bad.toml")
    path = _rename(tmp_path / "smpl.bvh", {JOINT_NAMES[k]: names[JOINT_NAMES[k]] for k in range(24)},
                   tmp_path / f"{scheme}.bvh", scale)
    motion = read_motion(path, body, MocapConfig(), joint_map)
    assert motion.kind == f"bvh:{scheme}" and read_bvh(path).unit == unit
    collars = [13, 14]
    others = [k for k in range(24) if k not in collars]
    np.testing.assert_allclose(motion.joints[:, others], joints[:, others], atol=2e-4)
    np.testing.assert_allclose(motion.keypoints, keypoints, atol=2e-4)
    assert np.abs(motion.joints[:, collars] - joints[:, collars]).max() < 0.06
    with pytest.raises(FormatError, match="--joint-map"):
        read_motion(_rename(path, {v: f"x{k}" for k, v in enumerate(names.values())}, tmp_path / "unknown.bvh"),
                    body, MocapConfig())


def test_smpl_bvh_and_units(tmp_path, body):
    joints, keypoints = _smpl_bvh(tmp_path / "export.bvh", body)
    motion = read_motion(tmp_path / "export.bvh", body, MocapConfig())
    assert motion.kind == "bvh:smpl"  # every joint is SMPL's own, exactly
    np.testing.assert_allclose(motion.joints, joints, atol=2e-4)
    np.testing.assert_allclose(motion.keypoints, keypoints, atol=2e-4)
    raw = read_bvh(tmp_path / "export.bvh")  # generic forward kinematics agrees with the body model
    np.testing.assert_allclose(raw.positions[:, [raw.index(n) for n in JOINT_NAMES]], joints, atol=2e-4)
    standing = np.array([[0.0, 0.0, 0.0], [0.1, 1.7, 0.0]])
    for unit, metres in UNITS.items():
        assert detect_unit(standing / metres) == unit
    with pytest.raises(FormatError, match="--units"):
        detect_unit(standing * 10)


def test_bad_files_are_listed_and_skipped(capsys, tmp_path):
    from test_preprocess_support import cli

    good = tmp_path / "in" / "good.bvh"
    good.parent.mkdir()
    good.write_bytes(CMU[0].read_bytes())
    text = CMU[0].read_text()
    (tmp_path / "in" / "truncated.bvh").write_text(text[:len(text) // 3])
    (tmp_path / "in" / "robot.bvh").write_text(re.sub(r"(JOINT|ROOT) (\w+)", r"\1 servo_\2", text))
    (tmp_path / "in" / "empty.bvh").write_text(text.split("MOTION")[0] + "MOTION\nFrames: 0\nFrame Time: 0.0083\n")
    (tmp_path / "in" / "noise.pkl").write_bytes(b"\x80\x04not a pickle")
    out = tmp_path / "d.h5"
    code, stdout, stderr = cli(capsys, "data", "from-mocap", tmp_path / "in", "--out", out)
    assert code == 0, stderr
    report = json.loads((tmp_path / "d.report.json").read_text())
    reasons = {Path(p["file"]).name: p["reason"] for p in report["problems"]}
    assert reasons == {"truncated.bvh": "malformed", "robot.bvh": "unknown-skeleton", "empty.bvh": "empty",
                       "noise.pkl": "unreadable"}
    assert report["read"] == 1 and len(Dataset(out)) == 1 and "1 clips" in stdout
    code, _, stderr = cli(capsys, "data", "from-mocap", tmp_path / "in", "--out", tmp_path / "s.h5", "--strict")
    assert code == 2 and "--strict" in stderr and not (tmp_path / "s.h5").exists()
    assert cli(capsys, "data", "from-mocap", good, "--out", out)[0] == 2  # exists: needs --force
    assert cli(capsys, "data", "from-mocap", good, "--out", tmp_path / "x.h5", "--units", "furlong")[0] == 2


def _malicious_pickle(marker: Path) -> bytes:
    """A pickle whose loading would create ``marker`` (protocol 0: call builtins.open(marker, 'w'))."""
    return f"cbuiltins\nopen\n(V{marker}\nVw\ntR.".encode()


def test_pickle_with_code_is_refused_and_nothing_runs(capsys, tmp_path):
    import pickle

    from test_preprocess_support import cli

    from k2m_core.export.aistpp import load_plain_pickle

    marker = tmp_path / "pwned"
    payload = tmp_path / "dance.pkl"
    payload.write_bytes(_malicious_pickle(marker))
    with pytest.raises(ValueError, match="builtins.open"):
        load_plain_pickle(payload)
    code, _, stderr = cli(capsys, "data", "from-mocap", payload, CMU[0], "--out", tmp_path / "d.h5")
    assert code == 0
    problems = json.loads((tmp_path / "d.report.json").read_text())["problems"]
    assert [p["reason"] for p in problems] == ["unreadable"] and "refused" in problems[0]["message"]
    code, _, stderr = cli(capsys, "export", payload, "--to", "npz", "--out", tmp_path / "e")
    assert code == 2 and "refused" in stderr
    # An array of Python objects is refused too, although numpy's own globals build it.
    payload.write_bytes(pickle.dumps({"smpl_poses": np.array([{"a": 1}], dtype=object)}))
    with pytest.raises(ValueError, match="refused"):
        load_plain_pickle(payload)
    assert not marker.exists()
    data = load_plain_pickle(AIST)  # the real AIST++ file loads
    assert data["smpl_poses"].shape == (720, 72) and data["smpl_scaling"].shape == (1,)


def test_export_reads_aistpp(capsys, tmp_path, body):
    from test_preprocess_support import cli

    code, stdout, stderr = cli(capsys, "export", AIST, "--to", "npz", "--out", tmp_path)
    assert code == 0, stderr
    with np.load(tmp_path / f"{AIST.stem}.npz") as npz:
        assert npz["poses"].shape == (720, 72) and float(npz["mocap_framerate"]) == 60.0
        np.testing.assert_allclose(npz["poses"][:, 3:], load_aist()[:, 3:], atol=1e-5)  # only the root turns


def load_aist():
    from k2m_core.export.aistpp import load_plain_pickle

    return load_plain_pickle(AIST)["smpl_poses"]


def test_humanml3d_crops_and_captions(capsys, tmp_path, body):
    """Segments of HumanML3D's index are cut from the AMASS file where HumanML3D cut them (its 20 fps
    frames, and the opening seconds it drops for some datasets) and carry their captions."""
    from test_preprocess_support import cli

    from k2m_core.export.amass import write_amass_npz

    amass = tmp_path / "amass"
    for sub, seconds in (("KIT/3/walk_poses", 30), ("Eyes_Japan_Dataset/aita/jump-01_poses", 12),
                         ("CMU/01/unlisted_poses", 5)):
        motion = sample_motion(np.random.default_rng(len(sub)), fps=120.0, families=("walk",))
        poses = np.repeat(motion.poses[:1], seconds * 120, axis=0)  # one pose drifting sideways: no teleports
        transl = motion.transl[0] + np.linspace(0.0, 3.0, seconds * 120)[:, None] * [1.0, 0.0, 0.0]
        path = amass / f"{sub}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_amass_npz(path, poses, transl, motion.betas, np.zeros((len(poses), 24, 3)), 120.0)
    hml = tmp_path / "HumanML3D"
    (hml / "texts").mkdir(parents=True)
    (hml / "index.csv").write_text(
        "source_path,start_frame,end_frame,new_name\n"
        "./pose_data/KIT/3/walk_poses.npy,0,100,000000.npy\n"
        "./pose_data/KIT/3/walk_poses.npy,200,396,000001.npy\n"
        "./pose_data/Eyes_Japan_Dataset/aita/jump-01_poses.npy,20,80,000002.npy\n"
        "./pose_data/KIT/3/walk_poses.npy,500,520,000003.npy\n"
        "./pose_data/humanact12/humanact12/P01G01R01F0001T0001A0101.npy,0,60,000004.npy\n")
    (hml / "texts" / "000000.txt").write_text("a man walks forward.#a/DET man/NOUN#0.0#0.0\n"
                                              "someone strolls#someone/PRON#0.0#0.0\n")
    (hml / "texts" / "000001.txt").write_text("a person walks in a circle#a/DET#0.0#0.0\n")
    (hml / "texts" / "000002.txt").write_text("a person jumps#a/DET#0.0#0.0\n")
    out = tmp_path / "hml.h5"
    code, _, stderr = cli(capsys, "data", "from-mocap", amass, "--humanml3d", hml, "--out", out, "--clean")
    assert code == 0, stderr
    assert "unlisted_poses" in stderr  # no segment in the index: noted, skipped
    ds = Dataset(out)
    got = {ds.ids[i]: (json.loads(ds.sources[i])["frames"], ds.captions(i), int(ds.lengths[i])) for i in range(len(ds))}
    # 000000: HumanML3D's 20 fps frames 0-100 are the file's 120 fps frames 0-600 (5 s), 000001 1200-2376
    # (9.8 s); Eyes_Japan_Dataset drops its first 3 s (60 pose frames), so 000002 is (60+20)·6 = 480 to 840.
    assert got == {
        "KIT__3__walk_poses_000000_000000_v0": ([0, 596], ["a man walks forward.", "someone strolls"], 150),
        "KIT__3__walk_poses_000001_001200_v0": ([1200, 2372], ["a person walks in a circle"], 294),
        "Eyes_Japan_Dataset__aita__jump-01_poses_000002_000480_v0": ([480, 836], ["a person jumps"], 90),
    }
    report = json.loads((tmp_path / "hml.report.json").read_text())
    assert report["too_short"]["stretches"] == 1  # 000003: 1 s


def test_uncaptioned_mocap_merges_with_a_synthetic_corpus(clean_dataset, synth_corpus, tmp_path):
    """Motion without text is a dataset too (the tokenizer needs no captions), and merging it with a
    synthetic corpus keeps the 3D truth both carry."""
    from k2m_core.preprocess.merge import merge_datasets
    from k2m_core.preprocess.validate import validate_dataset

    assert validate_dataset(clean_dataset.path) == []
    result = merge_datasets([synth_corpus / "dataset.h5", clean_dataset.path], tmp_path / "m.h5")
    merged = Dataset(tmp_path / "m.h5")
    assert merged.ground_truth_frames == ["joints"] and len(merged) == 24 + len(clean_dataset)
    assert any("keypoints, poses, transl" in note for note in result["notes"])
    assert len(merged.captioned(np.arange(len(merged)))) == 24
    i = merged.index_of(clean_dataset.ids[0])
    np.testing.assert_array_equal(merged.ground_truth("joints", i), clean_dataset.ground_truth("joints", 0))
    assert merged.focals[i] == clean_dataset.focals[0]


def test_captions_by_file_stem(capsys, tmp_path):
    from test_preprocess_support import cli

    (tmp_path / "caps.csv").write_text("video,caption\ncmu_131_01,a man starts walking and stops\n")
    code, _, stderr = cli(capsys, "data", "from-mocap", CMU[0], AIST, "--captions", tmp_path / "caps.csv",
                          "--out", tmp_path / "d.h5")
    assert code == 0, stderr
    ds = Dataset(tmp_path / "d.h5")
    assert {ds.videos[i]: tuple(ds.captions(i)) for i in range(len(ds))} == {
        "cmu_131_01": ("a man starts walking and stops",), "aistpp_gBR_sBM_cAll_d04_mBR0_ch01": ()}
