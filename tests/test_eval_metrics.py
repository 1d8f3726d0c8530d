"""Evaluation building blocks against hand-computed values: text-to-motion metrics, physics,
MotionCritic's network, loader and input protocol."""

import math

import numpy as np
import pytest
import torch

from k2m_core.errors import UserError
from k2m_core.eval import metrics
from k2m_core.eval.physics import ground_contact, jitter, joint_limit_violations, physics_metrics, skating
from k2m_core.export.motion_file import WorldMotion


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(300, 6))
    assert abs(metrics.fid(x, x)) < 1e-8


def test_fid_of_gaussians_differing_only_in_mean_is_squared_mean_distance():
    x = np.random.default_rng(1).normal(size=(400, 5))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert metrics.fid(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_fid_grows_with_a_different_spread():
    x = np.random.default_rng(2).normal(size=(2000, 3))
    # N(0, I) vs N(0, 4I): Tr(I + 4I − 2·2I) = 3 per the formula
    assert metrics.fid(x, 2 * x) == pytest.approx(3 * x.var(axis=0, ddof=1).mean(), rel=0.05)


def test_r_precision_of_perfectly_aligned_embeddings_is_one():
    motion = np.random.default_rng(3).normal(size=(96, 8))
    top = metrics.r_precision(motion.copy(), motion, np.random.default_rng(0))
    np.testing.assert_array_equal(top, [1.0, 1.0, 1.0])


def test_r_precision_hand_computed_pool():
    # Texts on a line; motion i sits at its text, except motion 0 which sits between texts 1 and 2.
    text = np.array([[0.0], [10.0], [20.0]])
    motion = np.array([[15.0], [10.0], [20.0]])
    # text 0: distances (15, 10, 20) → own motion is 2nd nearest; texts 1 and 2 find theirs first.
    np.testing.assert_array_equal(metrics.top_k_hits(text, motion), [2, 3, 3])
    np.testing.assert_allclose(metrics.r_precision(text, motion, np.random.default_rng(0), pool=3), [2 / 3, 1, 1])


def test_r_precision_drops_the_incomplete_pool_and_is_near_chance_for_noise():
    rng = np.random.default_rng(4)
    text, motion = rng.normal(size=(32 * 50 + 7, 4)), rng.normal(size=(32 * 50 + 7, 4))
    top = metrics.r_precision(text, motion, rng)
    assert abs(top[0] - 1 / 32) < 0.02 and abs(top[2] - 3 / 32) < 0.03


def test_mm_dist_diversity_and_multimodality():
    text = np.zeros((4, 2))
    motion = np.tile([3.0, 4.0], (4, 1))
    assert metrics.mm_dist(text, motion) == pytest.approx(5.0)
    assert metrics.diversity(np.ones((50, 3)), np.random.default_rng(0)) == 0.0
    assert metrics.multimodality(np.ones((5, 10, 3)), np.random.default_rng(0)) == 0.0
    # Two motions 2 apart: each draw pairs them or not; the mean lies in [0, 2].
    two = np.array([[0.0], [2.0]])
    assert 0.0 <= metrics.diversity(two, np.random.default_rng(0)) <= 2.0
    assert metrics.diversity_pairs(1000) == 300 and metrics.diversity_pairs(250) == 100
    assert metrics.diversity_pairs(40) == 40


def test_mean_and_95_percent_interval():
    mean, ci = metrics.mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and ci == pytest.approx(1.96 * math.sqrt(1.25) / 2)


# ---------------------------------------------------------------- physics


def _feet_joints(frames: int, foot_height: float, speed: float, fps: float = 20.0) -> np.ndarray:
    """Joints (F, 24, 3) z-up: everything 1 m up except the four foot joints at ``foot_height``,
    all moving along x at ``speed`` m/s."""
    joints = np.zeros((frames, 24, 3))
    joints[..., 2] = 1.0
    joints[:, [7, 8, 10, 11], 2] = foot_height
    joints[..., 0] += (np.arange(frames) * speed / fps)[:, None]
    return joints


def test_skating_of_a_sliding_foot_vs_a_planted_one():
    assert skating(_feet_joints(40, 0.0, 0.0), 20.0) == (0.0, 0.0)  # planted
    assert skating(_feet_joints(40, 0.0, 1.0), 20.0) == (1.0, 1.0)  # sliding at 1 m/s on the ground
    assert skating(_feet_joints(40, 0.2, 1.0), 20.0) == (0.0, 0.0)  # a swinging foot 20 cm up is no contact
    assert skating(_feet_joints(40, 0.0, 0.3), 20.0) == (0.0, 0.0)  # below the 0.5 m/s threshold


def test_jitter_is_zero_for_constant_velocity_and_fps_cubed_for_a_kink():
    assert jitter(_feet_joints(30, 0.0, 2.0), 20.0) == pytest.approx(0.0, abs=1e-9)
    joints = np.zeros((4, 24, 3))
    joints[3, :, 0] = 0.001  # third difference 1 mm in one window
    assert jitter(joints, 20.0) == pytest.approx(0.001 * 20**3)


def test_ground_penetration_and_float_with_tolerance():
    penetration, floating = ground_contact(np.array([-0.015, 0.0, 0.025, 0.003]))
    assert penetration == pytest.approx(10 / 4) and floating == pytest.approx(20 / 4)


def test_joint_limit_violations():
    poses = np.zeros((4, 72))
    assert joint_limit_violations(poses) == (0.0, 0.0)
    poses[0, 3 * 4] = -2.5  # left knee bent backwards far past its limit
    rate, frames = joint_limit_violations(poses)
    assert rate == pytest.approx(1 / (4 * 69)) and frames == 0.25


def _standing(frames: int, speed: float, fps: float = 30.0, sink: float = 0.0) -> WorldMotion:
    """An upright T-pose (SMPL y-up turned z-up), feet on z = 0, translating along x at ``speed``."""
    from k2m_core.body.skeleton import SkeletonBody

    body = SkeletonBody().to(torch.float64)
    poses = np.zeros((frames, 72))
    poses[:, 0] = np.pi / 2  # +90° about x: SMPL's y-up becomes z-up
    trans = np.zeros((frames, 3))
    trans[:, 0] = np.arange(frames) * speed / fps
    motion = WorldMotion(poses, trans, np.zeros(10), fps)
    lowest = motion.pose(body).joints.numpy()[..., 2].min()
    motion.trans[:, 2] -= lowest + sink
    return motion, body


def test_physics_metrics_of_whole_motions():
    still, body = _standing(60, 0.0)
    result = physics_metrics(still, body)
    assert result["frames"] == 40  # 60 frames at 30 fps → 40 at 20 fps
    assert result["skating_ratio"] == 0.0 and result["penetration_mm"] == 0.0 and result["float_mm"] == 0.0
    assert result["jitter"] == pytest.approx(0.0, abs=1e-6)
    sliding, _ = _standing(60, 1.0)
    assert physics_metrics(sliding, body)["skating_ratio"] == 1.0
    sunk, _ = _standing(60, 0.0, sink=0.05)
    assert physics_metrics(sunk, body)["penetration_mm"] == pytest.approx(45.0)


# ---------------------------------------------------------------- MotionCritic


def save_released_layout(path, seed: int = 0) -> None:
    """A randomly initialised critic saved as motioncritic_pre.pth is: DataParallel keys in a dict."""
    from k2m_core.eval.critic import released_critic

    torch.manual_seed(seed)
    wrapped = torch.nn.DataParallel(released_critic())
    optimizer = torch.optim.Adam(wrapped.parameters(), lr=2e-5)
    torch.save({"epoch": 1, "model_state_dict": wrapped.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "best_accuracy": 0.5, "accuracy": 0.5}, path)


def test_critic_loads_released_layout_strictly_and_scores_deterministically(tmp_path):
    from k2m_core.eval.critic import load_critic

    save_released_layout(tmp_path / "critic.pth")
    state = torch.load(tmp_path / "critic.pth", weights_only=True)["model_state_dict"]
    assert all(k.startswith("module.") for k in state) and "module.mlp.fc1.weight" in state
    assert state["module.mlp.fc1.weight"].shape == (1024, 12800)
    assert state["module.dstran.temp_embed"].shape == (1, 243, 1, 256)
    model = load_critic(tmp_path / "critic.pth")
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[f"module.{key}"])
    motion = torch.randn(2, 60, 25, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first, second = model(motion), load_critic(tmp_path / "critic.pth")(motion)
    assert first.shape == (2,) and torch.equal(first, second)

    del state["module.mlp.fc2.bias"]
    torch.save({"model_state_dict": state}, tmp_path / "broken.pth")
    with pytest.raises(UserError, match="do not fit"):
        load_critic(tmp_path / "broken.pth")
    torch.save({"weights": 1}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="model_state_dict"):
        load_critic(tmp_path / "other.pth")


def test_critic_input_protocol_20fps_y_up_windows_recentred():
    from k2m_core.eval.critic import critic_windows

    frames = 300  # 10 s at 30 fps → 200 frames at 20 fps
    poses = np.zeros((frames, 72))
    poses[:, 0] = np.pi / 2  # upright in a z-up world
    trans = np.zeros((frames, 3))
    trans[:, 2] = 0.9 + np.arange(frames) / 30.0  # rising 1 m/s along z (up)
    first = critic_windows(poses, trans, 30.0, "first")
    assert first.shape == (1, 60, 25, 3)
    np.testing.assert_allclose(first[0, :, 24, 1], np.arange(60) / 20.0, atol=1e-5)  # up is y, from 0
    np.testing.assert_allclose(first[0, :, 24, [0, 2]], 0.0, atol=1e-5)
    np.testing.assert_allclose(first[0, :, 0], 0.0, atol=1e-5)  # upright in y-up: no global rotation
    every = critic_windows(poses, trans, 30.0, "all")
    assert every.shape == (3, 60, 25, 3)
    np.testing.assert_allclose(every[:, 0, 24], 0.0, atol=1e-6)  # each window re-centred on its first frame
    short = critic_windows(poses[:45], trans[:45], 30.0, "all")
    assert short.shape == (1, 30, 25, 3)
