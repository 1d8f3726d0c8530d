"""3D metrics of `k2m eval recon` on hand-built joint sequences with known answers."""

import math

import pytest
import torch

from k2m_core.eval.recon import PoseScores, angle_between, hip_angle, procrustes_align, view_of
from k2m_core.rotations import axis_angle_to_matrix

FRONT = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0]))  # SMPL upright, facing the camera


def body(frames: int = 8, yaw: float = 0.0, depth: float = 4.0, walk: float = 0.0) -> torch.Tensor:
    """A rigid 24-joint 'body' (fixed random offsets around the hips) turned by ``yaw`` about the
    vertical, its root moving ``walk`` metres along the camera axis over the frames: ``(F, 24, 3)``."""
    g = torch.Generator().manual_seed(0)
    rest = torch.randn(24, 3, generator=g) * 0.3
    rest[0] = 0.0
    rest[1], rest[2] = torch.tensor([0.1, 0.0, 0.0]), torch.tensor([-0.1, 0.0, 0.0])  # left hip at +x
    turn = axis_angle_to_matrix(torch.tensor([0.0, yaw, 0.0]))
    root = torch.stack([torch.zeros(frames), torch.zeros(frames), depth + torch.linspace(0, walk, frames)], -1)
    return (rest @ turn.T)[None] + root[:, None]


def test_procrustes_with_reflection_undoes_a_mirror_that_rotations_cannot():
    truth = body()
    mirrored = truth * torch.tensor([1.0, 1.0, -1.0])  # depth flipped: a reflection
    rotated = procrustes_align(mirrored, truth)
    reflected = procrustes_align(mirrored, truth, reflection=True)
    assert (reflected - truth).norm(dim=-1).max() < 1e-4
    assert (rotated - truth).norm(dim=-1).mean() > 0.05


def test_views_and_facing_angles():
    assert view_of(body(yaw=0.0)[0]) == "front"
    assert view_of(body(yaw=math.pi)[0]) == "back"
    left, right = view_of(body(yaw=-math.pi / 2)[0]), view_of(body(yaw=math.pi / 2)[0])
    assert {left, right} == {"left", "right"}
    # The body turned by 90° about the vertical: facing error 90°, whatever the wrap-around.
    error = angle_between(hip_angle(body(yaw=math.pi / 2)), hip_angle(body(yaw=0.0)))
    assert torch.allclose(torch.rad2deg(error), torch.full((8,), 90.0), atol=1e-3)
    assert math.degrees(float(angle_between(torch.tensor(3.1), torch.tensor(-3.1)))) == pytest.approx(math.degrees(2 * math.pi - 6.2), abs=1e-3)


def test_pose_scores_of_the_truth_are_zero_and_of_a_flipped_body_show_the_flip():
    truth = body(frames=30, walk=2.0)
    scores = PoseScores(fps=30.0)
    scores.add(truth, truth)
    summary = scores.summary()
    assert summary["mpjpe_mm"] < 1e-3 and summary["pa_mpjpe_mm"] < 1e-3 and summary["facing_deg"] < 1e-3
    assert summary["depth_travel_ratio"] == pytest.approx(1.0)
    # Depth mirrored about the root, root path kept: PA sees it, PA with reflection does not.
    flipped = truth.clone()
    flipped[..., 2] = 2 * truth[:, :1, 2] - truth[..., 2]
    scores = PoseScores(fps=30.0)
    scores.add(flipped, truth)
    summary = scores.summary()
    assert summary["pa_mpjpe_reflect_mm"] < 1e-2 < summary["pa_mpjpe_mm"]
    # A prediction that stays put keeps none of the travel; one standing still where the truth stands
    # still has no root speed, one that wanders does.
    still_truth = body(frames=30)
    wander = still_truth + torch.linspace(0, 0.6, 30)[:, None, None] * torch.tensor([1.0, 0.0, 0.0])
    scores = PoseScores(fps=30.0)
    scores.add(wander, still_truth)
    assert scores.summary()["still_root_speed_mps"] == pytest.approx(0.6 / 29 * 30, rel=1e-3)
    scores = PoseScores(fps=30.0)
    scores.add(body(frames=30), truth)
    assert scores.summary()["depth_travel_ratio"] == pytest.approx(0.0, abs=1e-6)
