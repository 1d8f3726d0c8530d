"""The procedural motion corpus: shapes, determinism, ground contact, and that each family does what
its caption says, checked by forward kinematics of the skeleton body.

World frame: y up, ground y = 0, the subject starts facing +z; +x is the subject's left, so a turn to
the left is a positive yaw (counter-clockwise seen from above).
"""

import json

import numpy as np
import pytest
import torch

from k2m_core.body.kinematics import FEET, HEAD, JOINT_NAMES
from k2m_core.body.skeleton import SkeletonBody
from k2m_core.synth.captions import VERBS
from k2m_core.synth.motions import FAMILIES, Motion, generate_motion, sample_motion

BODY = SkeletonBody()
J = {name: i for i, name in enumerate(JOINT_NAMES)}
AIRBORNE = ("jump", "hop", "jumping_jacks")


def joints(m: Motion) -> np.ndarray:
    out = BODY.forward_axis_angle(torch.from_numpy(m.poses), torch.from_numpy(m.betas).expand(len(m.poses), 10),
                                  torch.from_numpy(m.transl))
    return out.joints.numpy()


def clip(family: str, seed: int = 0, frames: int = 150, **opts) -> tuple[Motion, np.ndarray]:
    m = generate_motion([(family, opts)], np.random.default_rng(seed), num_frames=frames)
    return m, joints(m)


def lowest_foot(j: np.ndarray) -> np.ndarray:
    return j[:, list(FEET), 1].min(1)


def facing_deg(j: np.ndarray) -> np.ndarray:
    """Facing direction's yaw from the hips, unwrapped: 0 = +z, +90 = +x (the subject's initial left)."""
    facing = np.cross(j[:, J["left_hip"]] - j[:, J["right_hip"]], [0.0, 1.0, 0.0])
    return np.degrees(np.unwrap(np.arctan2(facing[:, 0], facing[:, 2])))



@pytest.fixture(scope="module")
def clips():
    return {f: [clip(f, seed, frames) for seed, frames in ((0, 150), (1, 231), (2, 75))] for f in FAMILIES}


def test_family_list_covers_the_required_actions():
    required = {"walk", "run", "jump", "hop", "squat", "wave", "punch", "kick", "turn", "jumping_jacks", "bow",
                "raise_arms", "clap", "sit", "side_step", "spin", "crouch_walk"}
    assert required <= set(FAMILIES) and len(FAMILIES) >= 17 and len(set(FAMILIES)) == len(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_arrays_shapes_and_finiteness(clips, family):
    for m, j in clips[family]:
        n = len(j)
        assert m.family == family
        assert m.poses.shape == (n, 72) and m.poses.dtype == np.float32
        assert m.transl.shape == (n, 3) and m.transl.dtype == np.float32
        assert m.betas.shape == (10,) and m.betas.dtype == np.float32 and np.abs(m.betas).max() <= 2
        assert np.isfinite(m.poses).all() and np.isfinite(m.transl).all() and np.isfinite(j).all()
        assert m.attributes["segments"][0]["family"] == family
    assert [len(m.poses) for m, _ in clips[family]] == [150, 231, 75]


def test_sample_motion_lengths_and_family_pool():
    rng = np.random.default_rng(7)
    for n in (2, 37, 60, 300):
        assert len(sample_motion(rng, num_frames=n).poses) == n
    lengths = [len(sample_motion(rng).poses) for _ in range(25)]
    assert min(lengths) >= 60 and max(lengths) <= 300
    assert 40 <= len(sample_motion(rng, fps=20.0).poses) <= 200
    for _ in range(10):
        m = sample_motion(rng, families=["jump", "wave"])
        assert {s["family"] for s in m.attributes["segments"]} <= {"jump", "wave"}
    with pytest.raises(ValueError, match="unknown motion famil"):
        sample_motion(rng, families=["moonwalk"])


def test_deterministic_given_the_rng_state():
    a, b = sample_motion(np.random.default_rng(3)), sample_motion(np.random.default_rng(3))
    json.dumps(a.attributes)  # plain Python values, storable as they are
    assert np.array_equal(a.poses, b.poses) and np.array_equal(a.transl, b.transl)
    assert np.array_equal(a.betas, b.betas) and a.captions == b.captions and a.attributes == b.attributes
    c = sample_motion(np.random.default_rng(4), num_frames=len(a.poses))
    assert not np.array_equal(a.poses, c.poses)


@pytest.mark.parametrize("family", FAMILIES)
def test_feet_on_the_ground_and_airborne_phases(clips, family):
    for m, j in clips[family]:
        low = lowest_foot(j)
        assert abs(low.min()) < 0.02, "a foot touches the ground"
        if family in AIRBORNE:
            assert low.max() >= 0.05, "both feet leave the ground"
        elif family == "run":
            assert low.max() >= 0.01
        else:
            assert low.max() < 0.02, "always standing on a foot"


@pytest.mark.parametrize("family", FAMILIES)
def test_smooth_motion(clips, family):
    bound = 0.35 if family == "run" else 0.25  # a runner's feet move ~3× the body's speed
    for m, j in clips[family]:
        assert np.linalg.norm(np.diff(j, axis=0), axis=-1).max() < bound


@pytest.mark.parametrize("family", FAMILIES)
def test_captions_name_the_action_and_side(clips, family):
    for m, _ in clips[family]:
        assert 2 <= len(m.captions) <= 4 and len(set(m.captions)) == len(m.captions)
        for caption in m.captions:
            assert caption == caption.lower() and caption.endswith(".") and "  " not in caption
            assert any(verb in caption for verb in VERBS[family]), caption
            for key in ("side", "direction"):
                value = m.attributes.get(key, "")
                for word in ("left", "right"):
                    if word in value:
                        assert word in caption, (caption, m.attributes)


@pytest.mark.parametrize("direction, axis, sign", [("forward", 2, 1), ("backward", 2, -1), ("left", 0, 1),
                                                   ("right", 0, -1)])
def test_walk_direction(direction, axis, sign):
    _, j = clip("walk", frames=150, direction=direction, speed="normal")
    moved = j[-1, 0] - j[0, 0]
    assert sign * moved[axis] > 0.8 and abs(moved[2 - axis]) < 0.3 * abs(moved[axis])


def test_walk_swings_arms_against_legs_and_runs_are_faster():
    m, j = clip("walk", frames=150, direction="forward")
    pelvis_z = j[:, [0], 2]
    left_foot, right_wrist, left_wrist = (j[:, [J[name]], 2] - pelvis_z
                                          for name in ("left_ankle", "right_wrist", "left_wrist"))
    assert np.corrcoef(left_foot[30:, 0], right_wrist[30:, 0])[0, 1] > 0.5
    assert np.corrcoef(left_foot[30:, 0], left_wrist[30:, 0])[0, 1] < -0.5
    assert (j[:, J["left_wrist"], 1] < j[:, J["left_shoulder"], 1]).all(), "arms hang down"
    _, run = clip("run", frames=150, direction="forward", speed="normal")
    assert run[-1, 0, 2] - run[0, 0, 2] > 1.5 * (j[-1, 0, 2] - j[0, 0, 2])


@pytest.mark.parametrize("direction, sign", [("left", 1), ("right", -1)])
def test_side_step_moves_sideways(direction, sign):
    _, j = clip("side_step", frames=150, direction=direction)
    moved = j[-1, 0] - j[0, 0]
    assert sign * moved[0] > 0.5 and abs(moved[2]) < 0.15
    assert abs(facing_deg(j)[-1]) < 10, "keeps facing forward"


@pytest.mark.parametrize("direction, angle", [("left", 90), ("right", 90), ("left", 180), ("right", 180)])
def test_turn_in_place(direction, angle):
    _, j = clip("turn", frames=120, direction=direction, angle=angle)
    turned = facing_deg(j)[-1] - facing_deg(j)[0]
    assert abs(turned - (angle if direction == "left" else -angle)) < 15
    assert np.linalg.norm(j[-1, 0, [0, 2]] - j[0, 0, [0, 2]]) < 0.3


def test_turn_left_is_counter_clockwise_from_above():
    _, j = clip("turn", frames=120, direction="left", angle=90)
    facing = np.cross(j[-1, J["left_hip"]] - j[-1, J["right_hip"]], [0.0, 1.0, 0.0])
    assert facing[0] > 0.9 * np.linalg.norm(facing), "now faces +x, the initial left"
    start, end = np.array([0.0, 0.0, 1.0]), facing / np.linalg.norm(facing)
    assert np.cross(start, end)[1] > 0.9, "rotation about +y: counter-clockwise seen from above"


@pytest.mark.parametrize("direction, sign", [("left", 1), ("right", -1)])
def test_spin(direction, sign):
    _, j = clip("spin", frames=120, direction=direction, repetitions=1)
    assert sign * (facing_deg(j)[-1] - facing_deg(j)[0]) > 330


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("style", ["hello", "overhead"])
def test_wave_raises_the_named_hand(side, style):
    _, j = clip("wave", frames=150, side=side, style=style)
    other = "right" if side == "left" else "left"
    assert (j[:, J[f"{side}_wrist"], 1] - j[:, HEAD, 1]).max() > 0.05
    assert (j[:, J[f"{other}_wrist"], 1] < j[:, J[f"{other}_shoulder"], 1]).all()


@pytest.mark.parametrize("side", ["left", "right", "both"])
def test_raise_arms_up(side):
    _, j = clip("raise_arms", frames=120, side=side, mode="up")
    for s in ("left", "right"):
        above = (j[:, J[f"{s}_wrist"], 1] - j[:, HEAD, 1]).max() > 0.2
        assert above == (side in (s, "both"))


def test_squat_and_sit_lower_the_pelvis_with_knees_forward():
    for family, drop in (("squat", 0.2), ("sit", 0.25)):
        _, j = clip(family, frames=150)
        pelvis = j[:, 0, 1]
        assert pelvis[0] - pelvis.min() > drop
        low = pelvis.argmin()
        for s in ("left", "right"):
            assert j[low, J[f"{s}_knee"], 2] - j[low, J[f"{s}_ankle"], 2] > 0.1
        assert np.abs(j[:, list(FEET), 2] - j[0, list(FEET), 2]).max() < 0.03, "feet stay planted"


@pytest.mark.parametrize("side", ["left", "right"])
def test_kick_lifts_the_named_foot_forward(side):
    _, j = clip("kick", frames=120, side=side)
    other = "right" if side == "left" else "left"
    foot, stand = j[:, J[f"{side}_foot"]], j[:, J[f"{other}_foot"]]
    top = foot[:, 1].argmax()
    assert foot[top, 1] > 0.3 and foot[top, 2] - j[top, 0, 2] > 0.3
    assert stand[:, 1].max() < 0.03


@pytest.mark.parametrize("side", ["left", "right"])
def test_punch_extends_the_named_arm(side):
    _, j = clip("punch", frames=120, side=side)
    other = "right" if side == "left" else "left"
    reach = j[:, J[f"{side}_wrist"], 2] - j[:, 0, 2]
    assert reach.max() > 0.45 and (j[:, J[f"{other}_wrist"], 2] - j[:, 0, 2]).max() < 0.4


def test_bow_pitches_the_trunk_forward():
    _, j = clip("bow", frames=120)
    head = j[:, HEAD] - j[:, 0]
    assert head[:, 2].max() - head[0, 2] > 0.15 and head[:, 1].min() < head[0, 1] - 0.05
    assert lowest_foot(j).max() < 0.01


@pytest.mark.parametrize("direction", ["in_place", "forward"])
def test_jump(direction):
    _, j = clip("jump", frames=120, direction=direction)
    assert lowest_foot(j).max() > 0.1
    moved = j[-1, 0, 2] - j[0, 0, 2]
    assert moved > 0.3 if direction == "forward" else abs(moved) < 0.15


@pytest.mark.parametrize("side", ["left", "right"])
def test_hop_on_one_leg(side):
    _, j = clip("hop", frames=150, side=side)
    other = "right" if side == "left" else "left"
    free = j[:, J[f"{other}_ankle"], 1]
    hopping = lowest_foot(j) > 0.03
    assert hopping.any() and free[hopping].min() > 0.15, "the other foot stays up while hopping"


def test_jumping_jacks_open_arms_and_legs():
    _, j = clip("jumping_jacks", frames=150)
    assert (j[:, J["left_wrist"], 1] - j[:, HEAD, 1]).max() > 0.2
    assert np.abs(j[:, J["left_ankle"], 0] - j[:, J["right_ankle"], 0]).max() > 0.4


def test_clap_brings_the_hands_together():
    _, j = clip("clap", frames=120)
    apart = np.linalg.norm(j[:, J["left_wrist"]] - j[:, J["right_wrist"]], axis=-1)
    assert apart.min() < 0.1
    near = apart < 0.1
    assert (j[near, J["left_wrist"], 0] > j[near, J["right_wrist"], 0] - 0.02).all(), "hands do not cross"
    assert (j[near, J["left_wrist"], 2] - j[near, 0, 2]).min() > 0.2, "in front of the body"


def test_crouch_walk_march_stretch_idle():
    _, j = clip("crouch_walk", frames=150, direction="forward")
    assert j[0, 0, 1] - j[60:, 0, 1].max() > 0.12 and j[-1, 0, 2] - j[0, 0, 2] > 0.5
    _, j = clip("march", frames=150)
    assert np.linalg.norm(j[-1, 0, [0, 2]] - j[0, 0, [0, 2]]) < 0.4
    assert (j[:, J["left_knee"], 1] - j[0, J["left_knee"], 1]).max() > 0.08, "knees lifted"
    for side, sign in (("left", 1), ("right", -1)):
        m, j = clip("stretch", frames=210, side=side, sides=2)
        assert (j[:, J["right_wrist"], 1] - j[:, HEAD, 1]).max() > 0.2
        lean = j[:, HEAD, 0] - j[:, 0, 0]
        first = np.argmax(np.abs(lean - lean[0]) > 0.05)
        assert sign * (lean[first] - lean[0]) > 0, "leans to the named side first"
    _, j = clip("idle", frames=150)
    assert np.linalg.norm(j[-1, 0] - j[0, 0]) < 0.1 and np.linalg.norm(np.diff(j, axis=0), axis=-1).max() < 0.02


def test_composite_clip_is_smooth_and_described_in_order():
    m = generate_motion([("walk", {"direction": "forward"}), ("wave", {"side": "right"})],
                        np.random.default_rng(0), num_frames=240)
    j = joints(m)
    first, second = m.attributes["segments"]
    assert m.family == "walk" and first["family"] == "walk" and second["family"] == "wave"
    assert first["end"] > second["start"] and second["end"] == 240
    for caption in m.captions:
        assert caption.index("walk") < caption.index("wav") and "right" in caption
    assert np.linalg.norm(np.diff(j, axis=0), axis=-1).max() < 0.25
    assert j[second["start"], 0, 2] - j[0, 0, 2] > 0.5
    # C1 across the cross-fade: joint accelerations there are no larger than elsewhere in the clip.
    acc = np.linalg.norm(np.diff(j, 2, axis=0), axis=-1).max(1)
    fade = np.zeros(len(acc), bool)
    fade[second["start"] - 2:first["end"]] = True
    assert acc[fade].max() <= 1.2 * acc[~fade].max()


def test_segments_continue_from_the_previous_facing():
    m = generate_motion([("turn", {"direction": "left", "angle": 90}), ("walk", {"direction": "forward"})],
                        np.random.default_rng(1), num_frames=210)
    j = joints(m)
    moved = j[-1, 0] - j[m.attributes["segments"][1]["start"], 0]
    assert moved[0] > 0.8 and abs(moved[2]) < 0.3 * moved[0], "walks towards the initial left"
    assert m.family == "turn"


def test_idle_is_skipped_when_naming_the_family():
    m = generate_motion(["idle", ("jump", {})], np.random.default_rng(0), num_frames=150)
    assert m.family == "jump" and m.attributes["family"] == "jump"
    assert generate_motion(["idle"], np.random.default_rng(0), num_frames=60).family == "idle"
