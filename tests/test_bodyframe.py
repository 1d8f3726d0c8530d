"""Body-frame (view-free) motion: canonicalisation is exact, the view places it, mirroring commutes."""

import math

import torch

from k2m_core.rotations import axis_angle_to_matrix
from k2m_core.tokenizer import MotionVQAdapter, preset
from k2m_core.tokenizer.bodyframe import front_view, heading, integrate, view_rotation, yaw_matrix
from test_tokenizer import BODY, synthetic_clips

MIRROR_X = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))


def random_motion(batch: int = 3, frames: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Orientations ``(B, F, 3, 3)`` that turn and lean, and a wandering root ``(B, F, 3)``."""
    g = torch.Generator().manual_seed(seed)
    axis_angle = torch.randn(batch, frames, 3, generator=g) * torch.tensor([0.3, 1.5, 0.3])
    root = torch.randn(batch, frames, 3, generator=g).cumsum(1) * 0.1 + torch.tensor([0.0, 0.9, 3.0])
    return axis_angle_to_matrix(axis_angle), root


def test_heading_adds_the_yaw_it_is_turned_by():
    orient, _ = random_motion()
    turn = torch.tensor(0.7)
    delta = heading(yaw_matrix(turn) @ orient) - heading(orient)
    assert torch.allclose(torch.remainder(delta - turn + math.pi, 2 * math.pi) - math.pi, torch.zeros_like(delta),
                          atol=1e-5)


def body_features(orient: torch.Tensor, root: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What a body-frame decoder describes of a motion: yaw rate, steps in the heading frame, height."""
    angle = heading(orient)
    rate = torch.remainder(angle.diff(dim=1, prepend=angle[:, :1]) + math.pi, 2 * math.pi) - math.pi
    moves = root.diff(dim=1, prepend=root[:, :1])
    local = (yaw_matrix(-angle) @ moves[..., None])[..., 0]
    return orient, rate, local[..., [0, 2]], root[..., 1]


def canonical(orient: torch.Tensor, root: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The motion turned so its first heading is 0 and moved so its first root is the origin."""
    undo = yaw_matrix(-heading(orient[:, 0]))[:, None]
    return undo @ orient, ((root - root[:, :1])[..., None, :] @ undo.transpose(-1, -2))[..., 0, :]


def test_integrating_a_motions_turns_and_steps_gives_it_back_in_its_own_frame():
    orient, root = random_motion()
    rebuilt = integrate(*body_features(orient, root))
    expected = canonical(orient, root)
    assert torch.allclose(rebuilt[0], expected[0], atol=1e-5) and torch.allclose(rebuilt[1], expected[1], atol=1e-5)


def test_a_motion_turned_and_moved_has_the_same_turns_steps_and_body_frame_motion():
    orient, root = random_motion()
    turn = yaw_matrix(torch.tensor([0.4, -2.0, 3.0]))[:, None]  # a different turn per clip
    moved_root = (turn @ root[..., None])[..., 0] + torch.tensor([5.0, 0.0, -2.0])
    features, again = body_features(orient, root), body_features(turn @ orient, moved_root)
    for a, b in zip(features[1:], again[1:]):
        assert torch.allclose(a, b, atol=1e-5)
    body, turned = integrate(*features), integrate(*again)
    assert torch.allclose(body[0], turned[0], atol=1e-5) and torch.allclose(body[1], turned[1], atol=1e-5)


def test_whatever_the_decoder_says_the_first_frame_faces_forward_from_the_origin():
    orient, root = random_motion(seed=2)
    g = torch.Generator().manual_seed(3)
    orient, root = integrate(orient, torch.randn(3, 20, generator=g), torch.randn(3, 20, 2, generator=g),
                             torch.randn(3, 20, generator=g))
    assert torch.allclose(heading(orient[:, 0]), torch.zeros(3), atol=1e-6)
    assert torch.allclose(root[:, 0], torch.zeros(3, 3))


def test_mirroring_the_turns_and_steps_mirrors_the_motion():
    orient, rate, step, height = body_features(*random_motion(seed=1))
    flip = torch.tensor([-1.0, 1.0])
    mirrored = integrate(MIRROR_X @ orient @ MIRROR_X, -rate, step * flip, height)
    body = integrate(orient, rate, step, height)
    assert torch.allclose(mirrored[0], MIRROR_X @ body[0] @ MIRROR_X, atol=1e-5)
    assert torch.allclose(mirrored[1], body[1] @ MIRROR_X, atol=1e-5)


def test_the_front_view_faces_the_camera_upright_and_yaw_turns_the_body():
    rotation = view_rotation(front_view(1, 0.0))[0]
    # The body's up (+y) is the camera's up (−y, image rows grow downwards); its front (+z) faces the camera.
    assert torch.allclose(rotation @ torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, -1.0, 0.0]), atol=1e-6)
    assert torch.allclose(rotation @ torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)
    view = front_view(1, 0.0, yaw=torch.tensor([0.5]))
    assert torch.allclose(view_rotation(view)[0], rotation @ yaw_matrix(torch.tensor(0.5)), atol=1e-6)
    # The rig's "left" viewpoint (−90°) shows the camera the body's left side (+x, SMPL's left).
    left = view_rotation(front_view(1, 0.0, yaw=torch.tensor([-math.pi / 2])))[0]
    assert torch.allclose(left @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)


def test_body_tokens_start_where_camera_tokens_do_and_decode_facing_the_camera():
    keypoints, valid = synthetic_clips(3, 32, seed=4)
    joints = {}
    for tokens in ("camera", "body"):
        torch.manual_seed(0)
        model = MotionVQAdapter(preset("tiny", tokens=tokens), BODY).eval()
        joints[tokens] = model(keypoints, valid, torch.full((3,), 1500.0)).smpl.joints
        decoded = model.decode(model.encode(keypoints, valid), torch.tensor(1920.0), torch.tensor(1080.0))
        hips = decoded.joints[:, 0, 1] - decoded.joints[:, 0, 2]  # left − right hip, camera frame
        assert (hips[:, 0] > 0.1).all()  # facing the camera: its left hip on the image's right
    assert (joints["camera"] - joints["body"]).abs().max() < 0.02  # metres, before any training
