"""The random-view 2D pose prior and the per-clip camera: geometry, hand-built cases, gradient
routing, and that everything off gives the paper's objective exactly."""

import math

import numpy as np
import torch

from k2m_core.body import load_body_model
from k2m_core.camera import project
from k2m_core.data.dataset import Dataset, DatasetWriter
from k2m_core.keypoints import make_clip
from k2m_core.rotations import axis_angle_to_matrix
from k2m_core.tokenizer import MotionVQAdapter, preset
from k2m_core.tokenizer.views import PosePrior, normalise_pose, prior_losses, random_rotations, rotate_about
from k2m_core.train.windows import WindowSampler
from test_tokenizer import synthetic_clips

BODY = load_body_model("skeleton")


def posed_body(global_orient: torch.Tensor, transl: torch.Tensor, frames: int = 5):
    """The skeleton body in a fixed bent pose, ``frames`` copies, with this global orientation."""
    axis_angle = torch.zeros(frames, 24, 3)
    axis_angle[:, 4, 0], axis_angle[:, 18, 1], axis_angle[:, 1, 0] = 0.9, -0.8, -0.4  # knee, elbow, hip
    rotmats = axis_angle_to_matrix(axis_angle)
    rotmats[:, 0] = global_orient
    return BODY(rotmats, torch.zeros(frames, 10), transl.expand(frames, 3))


def test_random_rotations_are_rotations_about_the_vertical_within_the_elevation():
    rot = random_rotations(500, math.radians(10), generator=torch.Generator().manual_seed(0))
    eye = torch.eye(3).expand(500, 3, 3)
    assert torch.allclose(rot @ rot.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(500), atol=1e-5)
    # The camera's y axis (vertical) tilts by the elevation alone, at most 10°.
    tilt = torch.rad2deg(torch.acos(rot[:, 1, 1].clamp(-1, 1)))
    assert tilt.max() <= 10.0 + 1e-3 and tilt.max() > 8.0
    azimuth = torch.rad2deg(torch.atan2(rot[:, 0, 2], rot[:, 0, 0]))
    assert azimuth.min() < -150 and azimuth.max() > 150  # the whole circle


def test_turning_a_body_and_projecting_it_is_exact_against_posing_it_turned():
    """A body turned by R about its pelvis projects exactly as the body posed with orientation
    R·R0 and its pelvis in the same place."""
    orient = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0]))
    transl = torch.tensor([0.3, -0.1, 4.0])
    first = posed_body(orient, transl)
    rot = random_rotations(1, math.radians(15), generator=torch.Generator().manual_seed(3))
    pivot = first.joints[:1, 0]  # the pelvis
    turned = rotate_about(first.keypoints[None], rot, pivot)[0]
    rest_pelvis = BODY.rest_joints(torch.zeros(1, 10))[0, 0]
    # SMPL rotates about the rest pelvis: pelvis = rest + transl, so keep the pelvis where it was.
    direct = posed_body(rot[0] @ orient, pivot[0] - rest_pelvis)
    a, _ = project(turned, 1920.0, 1080.0, 1200.0)
    b, _ = project(direct.keypoints, 1920.0, 1080.0, 1200.0)
    assert torch.allclose(a, b, atol=1e-3)
    # Turning back returns the body.
    back = rotate_about(turned[None], rot.transpose(1, 2), pivot)[0]
    assert torch.allclose(back, first.keypoints, atol=1e-5)


def test_normalised_poses_ignore_position_and_size():
    pixels = torch.rand(4, 17, 2) * 500
    moved = pixels * 2.5 + torch.tensor([300.0, -40.0])
    assert torch.allclose(normalise_pose(pixels), normalise_pose(moved), atol=1e-5)
    assert normalise_pose(pixels).shape == (4, 26)


def test_prior_terms_route_gradients_and_vanish_for_a_satisfied_prior():
    prior = PosePrior(width=16)
    real, fake = torch.randn(8, 26), torch.randn(6, 26, requires_grad=True)
    d_loss, g_loss = prior_losses(prior, real, fake)
    (g_grad,) = torch.autograd.grad(g_loss, fake, retain_graph=True)
    assert g_grad.abs().sum() > 0
    # The tokenizer's term never reaches the prior's weights, the prior's never the fakes.
    assert all(g is None for g in torch.autograd.grad(g_loss, list(prior.parameters()), allow_unused=True))
    assert all(g is not None for g in torch.autograd.grad(d_loss, list(prior.parameters())))
    assert torch.autograd.grad(d_loss, fake, allow_unused=True)[0] is None
    # A prior that calls everything a person: no tokenizer term. Nothing to compare: both 0.
    with torch.no_grad():
        prior.net[-1].weight.zero_()
        prior.net[-1].bias.fill_(1.0)
    assert prior_losses(prior, real, fake)[1].item() == 0.0
    assert prior_losses(prior, real[:0], fake) == (0.0, 0.0)


def tiny(**overrides) -> MotionVQAdapter:
    torch.manual_seed(0)
    return MotionVQAdapter(preset("tiny", adapter="none", **overrides), BODY)


def test_prior_terms_train_the_tokenizer_and_the_prior():
    model = tiny(lambda_prior=0.1).train()
    keypoints, valid = synthetic_clips(4, 32)
    out = model(keypoints, valid, torch.full((4,), 1500.0))
    for name in ("prior", "prior_d"):
        assert out.terms[name] > 0, name
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prior.parameters())
    assert model.head.to_frame.weight.grad.abs().sum() > 0
    # Evaluation runs none of them; a model without the prior has no prior weights.
    assert model.eval()(keypoints, valid).terms["prior"] == 0
    assert tiny().prior is None and not any(k.startswith("prior") for k in tiny().state_dict())


def test_all_new_terms_off_with_f5000_is_the_paper_objective():
    """With the random-view terms, the mirror pull and the depth prior and low-pass off, source
    framing and every clip at 5000 px, the loss is the seven paper terms and equals the paper
    camera's (focal_source = "paper")."""
    paper_terms = dict(lambda_mirror=0.0, lambda_depth=0.0, depth_smoothing=0.0, lambda_prior=0.0, framing="source", dropout=0.0, quantizer_dropout=0.0)
    keypoints, valid = synthetic_clips(3, 32, seed=2)
    ours, paper = tiny(focal_source="dataset", **paper_terms), tiny(focal_source="paper", **paper_terms)
    a = ours.train()(keypoints, valid, torch.full((3,), 5000.0))
    b = paper.train()(keypoints, valid)
    config = ours.config
    seven = sum(getattr(config, f"lambda_{n}") * a.terms[n] for n in ("rvq", "rec", "vel", "smooth", "boundary",
                                                                       "pose", "shape"))
    assert torch.allclose(a.loss, seven, rtol=1e-5)
    assert torch.allclose(a.loss, b.loss, rtol=1e-5)
    for name in ("depth", "mirror", "prior", "prior_d"):
        assert a.terms[f"{name}_weighted"] == 0, name


def test_focal_length_reaches_the_loss():
    keypoints, valid = synthetic_clips(2, 32, seed=5)  # made with f = 5000 px
    model = tiny().eval()
    right = model(keypoints, valid, torch.full((2,), 5000.0)).terms["rec"]
    wrong = model(keypoints, valid, torch.full((2,), 800.0)).terms["rec"]
    assert not torch.allclose(right, wrong)
    paper = tiny(focal_source="paper").eval()
    assert torch.allclose(paper(keypoints, valid, torch.full((2,), 800.0)).terms["rec"],
                          paper(keypoints, valid).terms["rec"])


def test_training_batches_carry_each_clips_focal_length(tmp_path):
    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "d.h5") as writer:
        for i, focal in enumerate([900.0, 1400.0, 2100.0]):
            clip = make_clip(rng.uniform(100, 500, (40, 17, 2)), np.ones((40, 17)), 640, 480)
            writer.add_clip(f"c{i}", clip, ["x"], video=f"v{i}", focal=focal)
    dataset = Dataset(tmp_path / "d.h5")
    split = next(name for name in ("train", "val", "test") if len(dataset.splits[name]))
    batch = WindowSampler(dataset, split, 16, 6, seed=0)[0]
    assert torch.equal(batch.focal, torch.from_numpy(dataset.focals[batch.clip_index.numpy()]))
    assert set(batch.model_inputs()) == {"keypoints", "valid", "focal"}
