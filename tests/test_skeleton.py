import math

import torch

from k2m_core.body import load_body_model
from k2m_core.body.kinematics import JOINT_NAMES, PARENTS
from k2m_core.body.skeleton import FACE_OFFSETS, REST_OFFSETS, SkeletonBody
from k2m_core.rotations import axis_angle_to_matrix


def identity_pose(batch):
    return torch.eye(3).expand(batch, 24, 3, 3)


def test_rest_pose_equals_reference():
    body = SkeletonBody()
    joints = body.rest_joints(torch.zeros(1, 10))[0]
    offsets = torch.tensor(REST_OFFSETS)
    assert torch.allclose(joints[0], offsets[0])
    for j in range(1, 24):
        assert torch.allclose(joints[j] - joints[PARENTS[j]], offsets[j], atol=1e-6), JOINT_NAMES[j]
    out = body(identity_pose(1), torch.zeros(1, 10), torch.zeros(1, 3))
    assert torch.allclose(out.joints[0], joints)
    # Spot values of SMPL's neutral rest pose (docs/design.md#ref-smpl) summed along the chain: left ankle and head.
    assert torch.allclose(out.joints[0, 7], torch.tensor([0.088406, -1.087899, -0.026785]), atol=1e-5)
    assert torch.allclose(out.joints[0, 15], torch.tensor([0.004990, 0.352572, 0.036532]), atol=1e-5)


def test_forward_kinematics_of_known_rotation():
    body = SkeletonBody()
    rotmats = identity_pose(1).clone()
    # Raise the left arm: a quarter turn of the left shoulder
    # about +z turns the arm (+x) to point up (+y).
    rotmats[0, 16] = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    out = body(rotmats, torch.zeros(1, 10), torch.zeros(1, 3))
    shoulder, elbow = out.joints[0, 16], out.joints[0, 18]
    rest_offset = torch.tensor(REST_OFFSETS[18])
    expected = torch.tensor([-rest_offset[1], rest_offset[0], rest_offset[2]])
    assert torch.allclose(elbow - shoulder, expected, atol=1e-6)
    # Global orientation rotates everything about the pelvis, translation shifts everything.
    turn = identity_pose(1).clone()
    turn[0, 0] = axis_angle_to_matrix(torch.tensor([0.0, math.pi, 0.0]))
    moved = body(turn, torch.zeros(1, 10), torch.tensor([[1.0, 2.0, 3.0]]))
    rest = body(identity_pose(1), torch.zeros(1, 10), torch.zeros(1, 3))
    pelvis = rest.joints[0, 0]
    flipped = (rest.keypoints[0] - pelvis) * torch.tensor([-1.0, 1.0, -1.0]) + pelvis + torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(moved.keypoints[0], flipped, atol=1e-5)


def test_coco_keypoints_and_face():
    body = SkeletonBody()
    out = body(identity_pose(2), torch.zeros(2, 10), torch.zeros(2, 3))
    assert out.keypoints.shape == (2, 17, 3) and out.vertices is None
    assert torch.allclose(out.keypoints[0, 5], out.joints[0, 16])  # left shoulder
    assert torch.allclose(out.keypoints[0, 16], out.joints[0, 8])  # right ankle
    assert torch.allclose(out.keypoints[0, 0], out.joints[0, 15] + torch.tensor(FACE_OFFSETS[0]))
    assert out.keypoints[0, 1, 0] > out.keypoints[0, 2, 0]  # left eye on the subject's left (+x)


def test_beta_proxy():
    body = SkeletonBody()
    betas = torch.zeros(3, 10)
    betas[1, 0], betas[2, 1] = 2.0, 2.0
    rest = body.rest_joints(betas)
    height = rest[:, 15, 1] - rest[:, 7, 1]
    assert torch.allclose(height[1] / height[0], torch.tensor(1.08), atol=1e-5)
    leg = (rest[:, 4] - rest[:, 1]).norm(dim=-1)
    spine = (rest[:, 6] - rest[:, 3]).norm(dim=-1)
    assert leg[2] > leg[0] and spine[2] < spine[0]
    betas[0, 5:] = 3.0  # ignored components
    assert torch.allclose(body.rest_joints(betas[:1]), rest[:1])


def test_differentiable_and_batched():
    body = load_body_model("skeleton")
    poses = (torch.randn(8, 72, dtype=torch.float64) * 0.3).requires_grad_()
    out = body.to(torch.float64).forward_axis_angle(poses, torch.zeros(8, 10, dtype=torch.float64),
                                                   torch.zeros(8, 3, dtype=torch.float64))
    out.keypoints.sum().backward()
    assert torch.isfinite(poses.grad).all() and poses.grad.abs().sum() > 0
    single = body.forward_axis_angle(poses[3:4].detach(), torch.zeros(1, 10, dtype=torch.float64),
                                     torch.zeros(1, 3, dtype=torch.float64))
    assert torch.allclose(single.joints[0], out.joints[3].detach())
