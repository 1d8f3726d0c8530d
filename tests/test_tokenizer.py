"""MotionVQ-Adapter: losses, quantiser, masks, encode/decode round trips and a short training run."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from k2m_core.body import load_body_model
from k2m_core.camera import project, uvs_to_point
from k2m_core.errors import UserError
from k2m_core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from k2m_core.tokenizer import MotionVQAdapter, TokenizerConfig, preset
from k2m_core.tokenizer import losses
from k2m_core.tokenizer.framing import CANONICAL_SIZE, TORSO_FILL, canonical_framing, reframe
from k2m_core.tokenizer.pose_limits import load_pose_limits
from k2m_core.tokenizer.quantizer import EMACodebook, ResidualVQ

BODY = load_body_model("skeleton")
ROOT = Path(__file__).resolve().parents[1]


def synthetic_clips(num: int, frames: int, seed: int = 0, low_conf: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Random smooth motions of the skeleton body seen by the paper's camera: ``(num, frames, 18, 3)``
    keypoint clips (a few keypoints with low confidence) and an all-True ``valid``."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    t = torch.arange(frames) / 30.0
    wave = lambda amp, centre: centre[:, None] + amp[:, None] * torch.sin(  # noqa: E731
        2 * math.pi * rand(num, lo=0.4, hi=1.5)[:, None] * t + rand(num, hi=6.3)[:, None])
    axis_angle = torch.zeros(num, frames, 24, 3)
    for joint, axis, centre, amp in [(1, 0, -0.3, 0.5), (2, 0, -0.3, 0.5), (4, 0, 0.6, 0.5), (5, 0, 0.6, 0.5),
                                     (3, 0, 0.1, 0.15), (16, 2, -0.9, 0.5), (17, 2, 0.9, 0.5),
                                     (18, 1, -0.8, 0.6), (19, 1, 0.8, 0.6), (12, 1, 0.0, 0.3)]:
        axis_angle[:, :, joint, axis] = wave(rand(num, hi=amp), torch.full((num,), centre))
    yaw = wave(rand(num, hi=0.5), rand(num, lo=-1.0, hi=1.0))
    facing = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0]))
    rotmats = axis_angle_to_matrix(axis_angle)
    rotmats[:, :, 0] = facing @ axis_angle_to_matrix(torch.stack([0 * yaw, yaw, 0 * yaw], dim=-1))
    sizes = torch.tensor([[1920.0, 1080.0], [1280.0, 720.0], [1080.0, 1920.0]])[torch.randint(3, (num,), generator=g)]
    width, height = sizes[:, 0], sizes[:, 1]
    half = torch.maximum(width, height) / 2
    uvs = torch.stack([wave(rand(num, hi=0.1), rand(num, lo=-0.2, hi=0.2)),
                       wave(rand(num, hi=0.05), rand(num, lo=-0.1, hi=0.1)),
                       (wave(rand(num, hi=0.1), rand(num, lo=0.3, hi=0.5)) * half[:, None]).log()], dim=-1)
    betas = torch.zeros(num, 10)
    betas[:, :2] = rand(num, 2, lo=-1.0, hi=1.0)
    pelvis = uvs_to_point(uvs, width[:, None], height[:, None])
    transl = pelvis - BODY.rest_joints(betas)[:, None, 0]
    out = BODY(rotmats.flatten(0, 1), betas.repeat_interleave(frames, 0), transl.flatten(0, 1))
    uv, in_front = project(out.keypoints.unflatten(0, (num, frames)), width[:, None, None], height[:, None, None])
    assert in_front.all()
    conf = torch.where(torch.rand(num, frames, 17, generator=g) < low_conf, 0.3, 0.95)
    clip = torch.zeros(num, frames, 18, 3)
    clip[:, :, :17, :2], clip[:, :, :17, 2] = uv, conf
    clip[:, :, 17] = torch.stack([width, height, torch.ones(num)], dim=-1)[:, None]
    return clip, torch.ones(num, frames, dtype=torch.bool)


def tiny_model(adapter: str = "dstformer", **overrides) -> MotionVQAdapter:
    torch.manual_seed(0)
    return MotionVQAdapter(preset("tiny", adapter=adapter, **overrides), BODY)


def warmed_up(model: MotionVQAdapter, keypoints, valid) -> MotionVQAdapter:
    """Initialise the codebooks with one training forward, then switch to eval."""
    model.train()
    with torch.no_grad():
        model(keypoints, valid)
    return model.eval()


# ---------------------------------------------------------------- config


def test_config_presets_round_trip_and_validate():
    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11
    for name in ("paper", "cpu", "tiny"):
        values = preset(name).to_dict()
        assert all(isinstance(v, (str, int, float)) for v in values.values())
        text = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())  # flat TOML
        assert TokenizerConfig.from_dict(tomllib.loads(text)) == preset(name)
    paper = preset("paper")
    assert (paper.num_quantizers, paper.codebook_size, paper.code_dim, paper.downsample) == (6, 512, 512, 4)
    assert (paper.lambda_rvq, paper.lambda_rec, paper.lambda_smooth, paper.lambda_vel, paper.lambda_boundary,
            paper.lambda_pose, paper.lambda_shape) == (0.02, 0.02, 1e-4, 0.02, 5e-4, 10.0, 1.0)
    with pytest.raises(UserError, match="adapter"):
        preset("tiny", adapter="lstm")
    with pytest.raises(UserError, match="power of two"):
        preset("tiny", downsample=3)
    with pytest.raises(UserError, match="preset"):
        preset("huge")
    with pytest.raises(UserError, match="unknown key"):
        TokenizerConfig.from_dict({"widht": 3})


# ---------------------------------------------------------------- losses against hand-computed values


def test_to_reference_pixels():
    px = torch.tensor([[[1060.0, 540.0]], [[2020.0, 1080.0]], [[420.0, 140.0]]])  # (3, 1, 2)
    out = losses.to_reference_pixels(px, torch.tensor([1920.0, 3840.0, 640.0]), torch.tensor([1080.0, 2160.0, 480.0]))
    assert torch.allclose(out[:, 0], torch.tensor([[100.0, 0.0], [50.0, 0.0], [300.0, -300.0]]))


def test_reconstruction_and_velocity_losses():
    true = torch.zeros(1, 3, 2, 2)
    pred = torch.zeros(1, 3, 2, 2)
    pred[0, 0, 0] = torch.tensor([1.0, 2.0])  # |err| 3
    pred[0, 1, 0] = torch.tensor([-4.0, 0.0])  # 4
    pred[0, 2, 1] = torch.tensor([0.0, 5.0])  # 5, masked out
    pred[0, 1, 1] = torch.tensor([100.0, 0.0])  # 100, masked out
    mask = torch.tensor([[[True, True], [True, False], [True, False]]])
    # Confident entries: (0,0) 3, (0,1) 0, (1,0) 4, (2,0) 0 → mean 7/4.
    assert torch.isclose(losses.reconstruction_loss(pred, true, mask), torch.tensor(7 / 4))
    # Steps kept: joint 0 at 0→1 and 1→2; joint 1 at none (frame 1 unconfident).
    # Predicted displacements of joint 0: (−5, −2) → 7, (4, 0) → 4; true ones are 0 → mean 5.5.
    assert torch.isclose(losses.velocity_loss(pred, true, mask), torch.tensor(5.5))
    assert torch.equal(losses.velocity_mask(mask), torch.tensor([[[True, False], [True, False]]]))
    # Smoothness ignores confidence: all 4 joint-steps kept: 7, 4 (joint 0), 100, 105 (joint 1).
    seen = torch.ones(1, 3, 2, dtype=torch.bool)
    assert torch.isclose(losses.smoothness_loss(pred, seen), torch.tensor((7 + 4 + 100 + 105) / 4))
    empty = torch.zeros_like(mask)
    assert losses.reconstruction_loss(pred, true, empty) == 0 and losses.velocity_loss(pred, true, empty) == 0


def test_boundary_loss_uses_first_and_last_valid_frame():
    true = torch.zeros(2, 4, 1, 2)
    pred = torch.arange(8.0).reshape(2, 4, 1, 1).expand(2, 4, 1, 2).clone()  # L1 = 2·value
    valid = torch.tensor([[True, True, True, False], [False, True, True, True]])
    mask = valid[..., None].clone()
    first, last = losses.boundary_frames(valid)
    assert first.tolist() == [0, 1] and last.tolist() == [2, 3]
    # First frames: values 0 and 5 → L1 0 and 10 → mean 5; last: 2 and 7 → 4 and 14 → mean 9.
    assert torch.isclose(losses.boundary_loss(pred, true, mask, valid), torch.tensor(14.0))
    mask[1, 3, 0] = False  # an unconfident last keypoint drops out: last mean = 4
    assert torch.isclose(losses.boundary_loss(pred, true, mask, valid), torch.tensor(9.0))


def test_pose_and_shape_losses():
    theta_min = torch.tensor([[-1.0, -0.5, 0.0]])
    theta_max = torch.tensor([[1.0, 0.5, 0.2]])
    pose = torch.tensor([[[[1.5, 0.0, -0.1]], [[0.0, -0.7, 0.5]], [[9.0, 9.0, 9.0]]]])  # (1, 3, 1, 3)
    valid = torch.tensor([[True, True, False]])
    # Frame 0: 0.5 + 0 + 0.1 = 0.6; frame 1: 0 + 0.2 + 0.3 = 0.5; frame 2 padded → mean 0.55.
    assert torch.isclose(losses.pose_limit_loss(pose, theta_min, theta_max, valid), torch.tensor(0.55))
    betas = torch.zeros(2, 10)
    betas[0, :3] = torch.tensor([3.0, -4.0, 3.0])  # 0.1·10 − 0.5 = 0.5
    betas[1, 0] = 2.0  # 0.2 − 0.5 < 0 → 0
    assert torch.isclose(losses.shape_loss(betas, tau=0.5), torch.tensor(0.25))


def test_depth_prior_is_the_mean_change_of_log_scale_over_valid_steps():
    still = torch.full((1, 5), 5.0)
    valid = torch.ones(1, 5, dtype=torch.bool)
    assert losses.depth_speed_loss(still, valid) == 0
    wobble = torch.tensor([[0.0, 0.1, 0.0, 0.3, 9.0]])
    # Steps 0→1, 1→2, 2→3 count (0.1, 0.1, 0.3); 3→4 touches the padded frame 4 → mean 0.5/3.
    valid[0, 4] = False
    assert torch.isclose(losses.depth_speed_loss(wobble, valid), torch.tensor(0.5 / 3))
    assert losses.depth_speed_loss(wobble, torch.zeros_like(valid)) == 0
    assert preset("paper").lambda_depth > 0  # k2m's default; 0 gives the paper's objective


def test_clip_pixel_error_and_mirror_pull_by_hand():
    pred, true = torch.zeros(2, 2, 3, 2), torch.zeros(2, 2, 3, 2)
    pred[0, :, :, 0] = 3.0  # clip 0: every keypoint off by 3 px in u (L1 3)
    pred[1, 0, 0] = torch.tensor([10.0, 10.0])  # clip 1: one keypoint off by 20, but it is masked
    mask = torch.ones(2, 2, 3, dtype=torch.bool)
    mask[1, 0, 0] = False
    assert torch.equal(losses.clip_pixel_error(pred, true, mask), torch.tensor([3.0, 0.0]))

    joints = torch.zeros(2, 3, 24, 3)
    twin = torch.zeros(2, 3, 24, 3, requires_grad=True)
    with torch.no_grad():
        twin[:, :, 1:, 0] = 0.5  # every non-root joint 0.5 m away, root-relative
        twin[:, :, :, 2] += 7.0  # a different root position alone costs nothing
    joints.requires_grad_(True)
    valid = torch.tensor([[True, True, False], [True, True, True]])
    pull = torch.tensor([True, False])
    loss = losses.mirror_pull_loss(joints, twin, pull, valid)
    # Clip 0's two valid frames pulled, each 0.5·23/24 m on average, over all 5 valid frames.
    assert torch.isclose(loss, torch.tensor(2 * 0.5 * 23 / 24 / 5))
    loss.backward()
    assert twin.grad is None and joints.grad[1].abs().sum() == 0 and joints.grad[0, 2].abs().sum() == 0
    assert losses.mirror_pull_loss(joints, twin, torch.tensor([False, False]), valid) == 0


def test_mirrored_3d_projects_to_the_mirrored_video():
    """The twin's geometry: x → −x with left ↔ right swapped in 3D is `mirror_clip` in 2D."""
    from k2m_core.body.kinematics import MIRROR as SMPL_MIRROR
    from k2m_core.keypoints import MIRROR, mirror_clip

    keypoints, _ = synthetic_clips(3, 5, seed=2)
    rotmats = axis_angle_to_matrix(torch.randn(15, 24, 3) * 0.3)
    out = BODY(rotmats, torch.zeros(15, 10), torch.tensor([0.3, 0.1, 12.0]).expand(15, 3))
    width, height = keypoints[:, 0, 17, 0], keypoints[:, 0, 17, 1]
    points = out.keypoints.unflatten(0, (3, 5))
    flip = torch.tensor([-1.0, 1.0, 1.0])
    uv, _ = project(points, width[:, None, None], height[:, None, None])
    twin_uv, _ = project(points[:, :, list(MIRROR)] * flip, width[:, None, None], height[:, None, None])
    clip = keypoints.clone()
    clip[:, :, :17, :2] = uv
    torch.testing.assert_close(mirror_clip(clip)[:, :, :17, :2], twin_uv, atol=1e-3, rtol=0)
    np_clip = clip[0].numpy()
    assert (mirror_clip(np_clip) == mirror_clip(clip)[0].numpy()).all()  # numpy and torch agree
    mirrored_joints = out.joints[:, list(SMPL_MIRROR)] * flip
    assert torch.allclose(mirrored_joints[:, 1, 0], -out.joints[:, 2, 0])  # left hip ← right hip, mirrored


def test_mirror_pull_trains_only_and_leaves_the_codebooks_alone():
    keypoints, valid = synthetic_clips(4, 16, seed=3)
    plain, pulled = tiny_model(), tiny_model(lambda_mirror=1.0, mirror_margin=1.0)
    torch.manual_seed(1)
    out_plain = plain.train()(keypoints, valid)
    torch.manual_seed(1)
    out = pulled.train()(keypoints, valid)
    # The twin pass runs after the clip's own; it neither moves the codebooks nor the clip's own terms.
    for a, b in zip(plain.quantizer.layers, pulled.quantizer.layers):
        assert torch.equal(a.embed, b.embed)
    assert out.terms["rec"] == out_plain.terms["rec"] and out_plain.terms["mirror"] == 0
    assert torch.isfinite(out.terms["mirror"]) and out.terms["mirror"] > 0  # margin 1: some clip's twin fits better
    assert torch.isclose(out.loss, out_plain.loss + out.terms["mirror"])
    out.loss.backward()
    assert pulled.head.to_frame.weight.grad.abs().sum() > 0
    pulled.eval()
    with torch.no_grad():
        assert pulled(keypoints, valid).terms["mirror"] == 0


def test_depth_low_pass_ignores_padding_and_removes_jitter():
    from k2m_core.tokenizer.model import masked_gaussian_smooth

    frames = torch.arange(40.0)
    ramp = 5.0 + 0.01 * frames  # steady approach
    jitter = ramp + 0.004 * (-1.0) ** frames  # ±0.4 % of body size from frame to frame
    mask = torch.ones(1, 40, dtype=torch.bool)
    mask[0, 30:] = False
    padded = torch.where(mask[0], jitter, torch.tensor(-100.0))[None]  # padding holds garbage
    out = masked_gaussian_smooth(padded, mask, sigma=3.0)
    assert torch.equal(out[0, 30:], padded[0, 30:])  # padding is left alone …
    error = (out[0, :30] - ramp[:30]).abs()  # … and never leaks in
    assert error[6:24].max() < 1e-4 and error.max() < 0.4 * 0.004  # jitter gone inside, damped at the ends
    clean = masked_gaussian_smooth(ramp[None], mask, sigma=3.0)
    assert (clean[0, :30] - ramp[:30]).abs().max() < 1e-5  # a steady approach passes unchanged
    lone = torch.zeros(1, 40, dtype=torch.bool)
    lone[0, 7] = True
    assert masked_gaussian_smooth(padded, lone, sigma=3.0)[0, 7] == padded[0, 7]
    assert torch.equal(masked_gaussian_smooth(padded, mask, sigma=0.0), padded)
    with pytest.raises(UserError, match="depth_smoothing"):
        preset("tiny", depth_smoothing=-1.0)


def test_commitment_loss_is_masked_squared_norm_with_stop_gradient():
    residual = torch.tensor([[[1.0, 2.0], [3.0, 0.0], [7.0, 7.0]]], requires_grad=True)
    quantized = torch.tensor([[[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    loss = losses.commitment_loss(residual, quantized, mask)
    assert torch.isclose(loss, torch.tensor((5 + 10) / 2))
    loss.backward()
    assert quantized.grad is None or not quantized.grad.any()
    assert torch.allclose(residual.grad[0, 0], torch.tensor([1.0, 2.0]))  # 2·(r − a)/2
    assert not residual.grad[0, 2].any()


def test_pose_limits_file():
    limits = load_pose_limits()
    assert limits.theta_min.shape == limits.theta_max.shape == (23, 3)
    assert (limits.theta_min < limits.theta_max).all()
    assert "AIST++" in limits.provenance and "anatomical" in limits.provenance
    knee, elbow_l, elbow_r = limits.joints.index("left_knee"), limits.joints.index("left_elbow"), \
        limits.joints.index("right_elbow")
    assert limits.theta_min[knee, 0] > -0.3 and limits.theta_max[knee, 0] > 2.0  # flexes one way
    assert limits.theta_max[elbow_l, 1] < 0.3 and limits.theta_min[elbow_r, 1] > -0.3
    # Symmetric: the right side is the mirror of the left, (x, y, z) → (x, −y, −z).
    hip_l, hip_r = limits.joints.index("left_hip"), limits.joints.index("right_hip")
    lo, hi = limits.theta_min, limits.theta_max
    assert torch.allclose(lo[hip_r], torch.stack([lo[hip_l, 0], -hi[hip_l, 1], -hi[hip_l, 2]]))
    assert torch.allclose(hi[hip_r], torch.stack([hi[hip_l, 0], -lo[hip_l, 1], -lo[hip_l, 2]]))


# ---------------------------------------------------------------- quantiser


def test_ema_update_moves_code_toward_assigned_mean():
    book = EMACodebook(codebook_size=2, dim=2, decay=0.9)
    book.embed.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    book.embed_sum.copy_(book.embed * torch.tensor([[2.0], [5.0]]))
    book.cluster_size.copy_(torch.tensor([2.0, 5.0]))
    book.initted.fill_(1.0)
    vectors = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # both nearest to code 0
    _, codes, perplexity = book(vectors, torch.ones(2, dtype=torch.bool), update=True)
    assert codes.tolist() == [0, 0] and torch.isclose(perplexity, torch.tensor(1.0))
    # n = 0.9·2 + 0.1·2 = 2; s = 0.9·0 + 0.1·(4, 2) → e = (0.2, 0.1).
    assert torch.allclose(book.cluster_size, torch.tensor([2.0, 4.5]))
    assert torch.allclose(book.embed[0], torch.tensor([0.2, 0.1]))
    assert torch.allclose(book.embed[1], torch.tensor([10.0, 10.0]))  # unassigned, count 4.5 ≥ 1: kept
    # A masked-out vector changes nothing.
    before = book.embed.clone()
    book(torch.tensor([[0.2, 0.1], [50.0, 50.0]]), torch.tensor([True, False]), update=True)
    assert torch.allclose(book.embed[1], before[1])


def test_dead_code_reset_to_current_vectors():
    torch.manual_seed(0)
    book = EMACodebook(codebook_size=3, dim=2, decay=0.99)
    book.embed.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 50.0]]))
    book.embed_sum.copy_(book.embed)
    book.cluster_size.fill_(1.0)
    book.initted.fill_(1.0)
    vectors = torch.tensor([[0.1, 0.0], [0.0, 0.2], [0.3, 0.1], [0.2, 0.2]])
    book(vectors, torch.ones(4, dtype=torch.bool), update=True)
    # Codes 1 and 2 got nothing: count 0.99 < 1 → each restarts at one of the vectors with count 1.
    for code in (1, 2):
        assert any(torch.allclose(book.embed[code], v) for v in vectors)
        assert book.cluster_size[code] == 1.0 and torch.allclose(book.embed_sum[code], book.embed[code])
    assert book.cluster_size[0] > 1.0


def test_codebooks_initialise_from_first_batch():
    torch.manual_seed(0)
    rvq = ResidualVQ(num_quantizers=2, codebook_size=4, dim=3, dropout=0.0).train()
    latent = torch.randn(2, 5, 3)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    latent[1, 3:] = 1e6  # padded positions must not seed the codebook
    rvq(latent, mask)
    assert bool(rvq.layers[0].initted) and bool(rvq.layers[1].initted)
    assert rvq.layers[0].embed.abs().max() < 1e3


def test_quantizer_dropout_keeps_a_prefix_of_layers():
    torch.manual_seed(0)
    rvq = ResidualVQ(num_quantizers=4, codebook_size=8, dim=4, dropout=1.0).train()
    latent, mask = torch.randn(2, 6, 4), torch.ones(2, 6, dtype=torch.bool)
    seen = set()
    for _ in range(40):
        out = rvq(latent, mask)
        kept = (out.codes >= 0).all(dim=(0, 1))
        assert kept[:out.active_layers].all() and not kept[out.active_layers:].any()
        assert (out.perplexity[out.active_layers:] == 0).all()
        seen.add(out.active_layers)
    assert seen == {1, 2, 3, 4}
    rvq.eval()
    assert rvq(latent, mask).active_layers == 4


def test_rvq_straight_through_and_codes_to_latent():
    torch.manual_seed(0)
    rvq = ResidualVQ(num_quantizers=3, codebook_size=8, dim=4, dropout=0.0).train()
    rvq(torch.randn(4, 8, 4), torch.ones(4, 8, dtype=torch.bool))  # initialise
    rvq.eval()
    latent = torch.randn(2, 5, 4, requires_grad=True)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out = rvq(latent, mask)
    codes = rvq.encode(latent, mask)
    assert torch.equal(codes, out.codes) and (codes[1, 3:] == -1).all()
    assert torch.allclose(rvq.codes_to_latent(codes), out.latent, atol=1e-6)
    assert not out.latent[1, 3:].any()
    # Fewer layers: the first layer alone is that codebook's lookup.
    assert torch.allclose(rvq.codes_to_latent(codes[..., :1])[0], rvq.layers[0].embed[codes[0, :, 0]])
    # Straight-through: d(Σ quantised)/d(latent) is the identity at valid positions, 0 at padding.
    (out.latent * torch.arange(4.0)).sum().backward()
    assert torch.allclose(latent.grad[0], torch.arange(4.0).expand(5, 4))
    assert not latent.grad[1, 3:].any()


# ---------------------------------------------------------------- the model


@pytest.mark.parametrize("adapter", ["dstformer", "none"])
def test_forward_shapes_and_every_parameter_gets_a_gradient(adapter):
    # With every optional term on: DDP needs every parameter, the prior's included, in the graph.
    model = tiny_model(adapter, lambda_mirror=1.0, lambda_prior=0.1).train()
    keypoints, valid = synthetic_clips(3, 30)
    valid[2, 21:] = False
    out = model(keypoints, valid)
    q = model.config.num_quantizers
    assert out.pred_keypoints.shape == (3, 30, 17, 2)
    assert out.smpl.rotmats.shape == (3, 30, 24, 3, 3) and out.smpl.betas.shape == (3, 10)
    assert out.smpl.transl.shape == (3, 30, 3) and out.smpl.joints.shape == (3, 30, 24, 3)
    assert out.smpl.poses().shape == (3, 30, 72)
    assert out.codes.shape == (3, 8, q) and out.codes.dtype == torch.long
    assert (out.codes[2, 6:] == -1).all()  # frames 24… are padding
    assert out.perplexity.shape == (q,)
    names = {"rvq", "rec", "vel", "smooth", "boundary", "pose", "shape", "depth", "mirror", "prior", "prior_d"}
    assert set(out.terms) == names | {f"{n}_weighted" for n in names} | {"total"}
    assert torch.isclose(sum(out.terms[f"{n}_weighted"] for n in names), out.loss)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    # DDP with find_unused_parameters=False needs every parameter in the graph.
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_initial_body_is_upright_facing_the_camera():
    model = tiny_model().eval()
    keypoints, valid = synthetic_clips(2, 8)
    with torch.no_grad():
        out = model(keypoints, valid)
    pred = out.pred_keypoints[0, 0]
    assert pred[0, 1] < pred[15, 1]  # nose above the ankles in the image
    assert pred[5, 0] > pred[6, 0]  # the subject's left shoulder on the image's right: facing us
    global_orient = matrix_to_axis_angle(out.smpl.rotmats[0, 0, 0])
    assert torch.allclose(global_orient.abs(), torch.tensor([math.pi, 0, 0]), atol=0.1)
    assert out.terms["pose"] == 0 and out.terms["shape"] == 0


@pytest.mark.parametrize("adapter", ["dstformer", "none"])
def test_padding_does_not_change_valid_results_or_gradients(adapter):
    model = tiny_model(adapter)
    keypoints, valid = synthetic_clips(2, 30, seed=1)
    warmed_up(model, keypoints, valid)
    padded = torch.cat([keypoints, 1e4 * torch.randn(2, 13, 18, 3)], dim=1)  # garbage padding
    padded_valid = torch.cat([valid, torch.zeros(2, 13, dtype=torch.bool)], dim=1)

    def run(kp, va):
        model.zero_grad()
        out = model(kp, va)
        out.loss.backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters()}

    plain, plain_grads = run(keypoints, valid)
    more, more_grads = run(padded, padded_valid)
    assert torch.allclose(plain.loss, more.loss, rtol=1e-5)
    assert torch.allclose(plain.pred_keypoints, more.pred_keypoints[:, :30], atol=1e-3)
    assert torch.allclose(plain.smpl.joints, more.smpl.joints[:, :30], atol=1e-5)
    assert torch.equal(plain.codes, more.codes[:, :8]) and (more.codes[:, 8:] == -1).all()
    for name, grad in plain_grads.items():
        assert torch.allclose(grad, more_grads[name], rtol=1e-3, atol=1e-6), name


def test_low_confidence_keypoints_do_not_contribute():
    model = tiny_model()
    keypoints, valid = synthetic_clips(2, 16, seed=2, low_conf=0.2)
    warmed_up(model, keypoints, valid)
    moved = keypoints.clone()
    low = moved[..., :17, 2] < model.config.conf_threshold
    assert low.any()
    moved[..., :17, :2][low] += 500.0
    with torch.no_grad():
        a, b = model(keypoints, valid), model(moved, valid)
    assert torch.allclose(a.loss, b.loss) and torch.equal(a.codes, b.codes)
    assert torch.allclose(a.pred_keypoints, b.pred_keypoints)


def test_straight_through_gradients_reach_the_encoder():
    model = tiny_model(lambda_rvq=0.0).train()  # no commitment: only the decoder's gradient is left
    keypoints, valid = synthetic_clips(2, 16)
    model(keypoints, valid).loss.backward()
    for module in (model.adapter, model.joint_merge, model.encoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("framing", ["canonical", "source"])
def test_encode_decode_match_forward(framing):
    model = tiny_model(framing=framing, focal_source="paper")  # decode's camera is then forward's
    keypoints, valid = synthetic_clips(3, 32, seed=3)
    warmed_up(model, keypoints, valid)
    with torch.no_grad():
        out = model(keypoints, valid)
        codes = model.encode(keypoints, valid)
        # forward's motion is in the camera of the frame the model works in
        width, height = (model.frame_size(keypoints, valid) if framing == "source"
                         else (torch.tensor(CANONICAL_SIZE[0]), torch.tensor(CANONICAL_SIZE[1])))
        motion = model.decode(codes, width, height)
        # A length that is not a multiple of α: decode with lengths crops and pools betas the same way.
        short = model(keypoints[:, :30], valid[:, :30])
        short_motion = model.decode(model.encode(keypoints[:, :30], valid[:, :30]), width, height,
                                    lengths=torch.full((3,), 30))
    assert torch.equal(codes, out.codes)
    for name in ("rotmats", "betas", "transl", "joints"):
        assert torch.allclose(getattr(motion, name), getattr(out.smpl, name), atol=1e-5), name
        assert torch.allclose(getattr(short_motion, name), getattr(short.smpl, name), atol=1e-5), name
    assert model.codes_to_latent(codes[..., :1]).shape == (3, 8, model.config.code_dim)
    # Generation: fewer layers and a canonical camera still decode to a full motion.
    coarse = model.decode(codes[..., :1], torch.tensor(1920.0), torch.tensor(1080.0))
    assert coarse.joints.shape == (3, 32, 24, 3) and torch.isfinite(coarse.joints).all()


def test_decode_with_own_focal_keeps_the_body():
    """With each clip's own focal length, decode places the same body for another camera: the pose,
    shape and root-relative joints of forward, the depth scaled with the focal length."""
    model = tiny_model(focal_source="dataset")
    keypoints, valid = synthetic_clips(2, 32, seed=4)
    warmed_up(model, keypoints, valid)
    with torch.no_grad():
        out = model(keypoints, valid, torch.tensor([1200.0, 2500.0]))
        near = model.decode(out.codes, torch.tensor(1920.0), torch.tensor(1080.0), focal=1000.0)
        far = model.decode(out.codes, torch.tensor(1920.0), torch.tensor(1080.0), focal=3000.0)
    for motion in (near, far):
        assert torch.allclose(motion.rotmats, out.smpl.rotmats, atol=1e-5)
        assert torch.allclose(motion.joints - motion.joints[..., :1, :], out.smpl.joints - out.smpl.joints[..., :1, :],
                              atol=1e-4)
    assert torch.allclose(far.joints[..., 0, 2], 3 * near.joints[..., 0, 2], rtol=1e-4)


def test_runs_under_bf16_autocast():
    model = tiny_model().train()
    keypoints, valid = synthetic_clips(2, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(keypoints, valid)
    assert out.loss.dtype == torch.float32 and out.pred_keypoints.dtype == torch.float32
    assert out.smpl.joints.dtype == torch.float32 and torch.isfinite(out.loss)
    out.loss.backward()


def test_tiny_preset_learns():
    torch.manual_seed(0)
    model = MotionVQAdapter(preset("tiny"), BODY).train()
    keypoints, valid = synthetic_clips(6, 32, seed=4)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)  # 2e-3 is already too fast for the adapter
    rec, total = [], []
    for step in range(200):  # at 150 the 0.4 bar is too close to call (0.43 on some CPUs, 0.26 by 200)
        out = model(keypoints, valid)
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
        assert torch.isfinite(out.loss), step
        rec.append(out.terms["rec"].item())
        total.append(out.loss.item())
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    assert mean(rec[-10:]) < 0.4 * mean(rec[:10]), (rec[:10], rec[-10:])
    assert mean(total[-10:]) < 0.5 * mean(total[:10])


DDP_WORKER = textwrap.dedent("""
    import gc, sys, torch, torch.distributed as dist
    rank, init = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)


    def train():
        from torch.nn.parallel import DistributedDataParallel as DDP
        from k2m_core.body import load_body_model
        from k2m_core.tokenizer import MotionVQAdapter, preset
        torch.manual_seed(0)
        # The mirror pull too: its extra no-grad pass must not touch the codebooks or DDP's reducer.
        model = MotionVQAdapter(preset("tiny", quantizer_dropout=0.5, lambda_mirror=1.0), load_body_model("skeleton"))
        import inspect  # keep DDP from syncing buffers itself: the quantiser must keep them identical
        no_sync = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP).parameters
                   else "broadcast_buffers")
        ddp = DDP(model, find_unused_parameters=False, **{no_sync: False})
        optimiser = torch.optim.Adam(ddp.parameters(), lr=1e-3)
        torch.manual_seed(100 + rank)  # different data and random draws on each rank
        for step in range(4):
            keypoints = torch.rand(2, 16, 18, 3) * 500
            keypoints[..., 17, :] = torch.tensor([1920.0, 1080.0, 1.0])
            out = ddp(keypoints, torch.ones(2, 16, dtype=torch.bool))
            optimiser.zero_grad(); out.loss.backward(); optimiser.step()
        return torch.cat([layer.embed.flatten() for layer in model.quantizer.layers])


    books = train()
    gathered = [torch.zeros_like(books) for _ in range(2)]
    dist.all_gather(gathered, books)
    assert torch.equal(gathered[0], gathered[1]), "codebooks differ across ranks"
    # DDP's reducer (kept alive by hooks on the parameters) must go before the process group, and
    # the ranks must leave together: either torn down late aborts gloo's threads (SIGABRT at exit).
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
    print("ok")
""")


def test_ddp_keeps_codebooks_identical(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    init = f"file://{tmp_path / 'store'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, str(script), str(rank), init], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in range(2)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs


# ---------------------------------------------------------------- canonical framing


def _standing_clip(frames: int, *, shift: float = 0.0, width: float = 1280.0, height: float = 720.0) -> torch.Tensor:
    """A hand-made clip: shoulders 100 px above the hips (torso 100 px), feet 150 px below, the
    body moving right by ``shift`` px over the clip."""
    clip = torch.zeros(1, frames, 18, 3)
    x = 400.0 + shift * torch.arange(frames) / max(frames - 1, 1)
    for joint, (dx, y) in {0: (0, 170), 5: (-20, 200), 6: (20, 200), 11: (-10, 300), 12: (10, 300),
                           15: (-10, 450), 16: (10, 450)}.items():
        clip[0, :, joint, 0], clip[0, :, joint, 1], clip[0, :, joint, 2] = x + dx, y, 1.0
    clip[0, :, 17] = torch.tensor([width, height, 1.0])
    return clip


def test_canonical_framing_by_hand():
    valid = torch.ones(1, 10, dtype=torch.bool)
    still = _standing_clip(10)
    framing = canonical_framing(still, valid, 0.5)
    # torso 100 px → 18 % of 1080 px; the box (20 × 280 px) fits easily
    assert framing.scale.item() == pytest.approx(TORSO_FILL * 1080 / 100)
    assert framing.source_centre[0].tolist() == pytest.approx([400.0, 310.0])
    moved = reframe(still, valid, framing)
    assert moved[0, 0, 17].tolist() == [1920.0, 1080.0, 1.0]
    hips = moved[0, :, [11, 12], :2].mean(1)
    assert hips[0].tolist() == pytest.approx([960.0, 540.0 + (300 - 310) * framing.scale.item()])
    assert (moved[0, :, [1, 2, 3, 4], :] == 0).all()  # unseen keypoints stay (0, 0, 0)
    # Jitter multiplies the torso's scale (1.5× here), as long as the box still fits (280 px × 2.92 < 972 px).
    jittered = canonical_framing(still, valid, 0.5, torch.tensor([math.log(1.5)]))
    assert jittered.scale.item() == pytest.approx(1.5 * TORSO_FILL * 1080 / 100)
    assert jittered.source_centre[0].tolist() == framing.source_centre[0].tolist()
    # A run 4040 px across (shoulders ±20 px): the box, not the torso, sets the scale (90 % of the width),
    # with or without jitter.
    run = _standing_clip(10, shift=4000.0)
    framing = canonical_framing(run, valid, 0.5)
    assert framing.scale.item() == pytest.approx(0.9 * 1920 / 4040)
    assert canonical_framing(run, valid, 0.5, torch.tensor([0.5])).scale.item() == pytest.approx(0.9 * 1920 / 4040)
    xs = reframe(run, valid, framing)[0, :, :17, 0][run[0, :, :17, 2] > 0]
    assert xs.min().item() == pytest.approx(960 - 0.45 * 1920, abs=1e-2)
    assert xs.max().item() == pytest.approx(960 + 0.45 * 1920, abs=1e-2)
    # Back to the source frame exactly.
    assert torch.allclose(framing.to_source(framing.to_canonical(run[..., :17, :2])), run[..., :17, :2], atol=1e-3)
    # Nothing seen: scale 1, centred on the source frame; low-confidence keypoints do not count.
    dark = still.clone()
    dark[..., :17, 2] = 0.2
    framing = canonical_framing(dark, valid, 0.5)
    assert framing.scale.item() == 1.0 and framing.source_centre[0].tolist() == [640.0, 360.0]


def test_framing_jitter_draws_in_training_only_within_its_range():
    keypoints, valid = synthetic_clips(3, 32, seed=5)
    model = tiny_model(adapter="none", framing_jitter=0.5)
    warmed_up(model, keypoints, valid)
    model.eval()
    with torch.no_grad():  # evaluation and encoding never jitter: the same clip gives the same codes
        a, b = model(keypoints, valid), model(keypoints, valid)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.codes, model.encode(keypoints, valid))
    assert torch.equal(a.smpl.joints, b.smpl.joints)
    # In training, each clip's scale is drawn anew within exp(±framing_jitter) of the other draw's.
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        framings = [model._to_working_frame(keypoints, valid, None)[1].scale for _ in range(2)]
    assert not torch.allclose(framings[0], framings[1])
    ratio = framings[0] / framings[1]
    assert ((ratio > math.exp(-1.0) - 1e-4) & (ratio < math.exp(1.0) + 1e-4)).all()
    with pytest.raises(Exception, match="framing_jitter"):
        TokenizerConfig(framing_jitter=-0.1).validate()


def test_canonical_framing_makes_codes_independent_of_where_the_person_stands():
    # The paper's camera (f = 5000 px about the image centre): there a shift of the picture is a move
    # of the body, so the losses are unchanged too. Under a clip's own camera only the codes are.
    model = tiny_model(adapter="none", focal_source="paper")
    keypoints, valid = synthetic_clips(3, 32, seed=4)
    warmed_up(model, keypoints, valid)
    # The same clips 1.5× larger, 200 px further right and 100 px up, in a 4K frame.
    moved = keypoints.clone()
    moved[..., :17, :2] = keypoints[..., :17, :2] * 1.5 + torch.tensor([200.0, -100.0])
    moved[..., 17, :2] = torch.tensor([3840.0, 2160.0])
    with torch.no_grad():
        a, b = model(keypoints, valid), model(moved, valid)
        paper = tiny_model(adapter="none", framing="source")
        warmed_up(paper, keypoints, valid)
        c, d = paper(keypoints, valid), paper(moved, valid)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.codes, model.encode(moved, valid))
    assert torch.allclose(a.loss, b.loss, rtol=1e-4)
    # Predictions come back in each input's own frame.
    shifted = a.pred_keypoints * 1.5 + torch.tensor([200.0, -100.0])
    assert torch.allclose(shifted, b.pred_keypoints, atol=1e-2)
    # The paper's framing encodes where the person stands: the codes change.
    assert not torch.equal(c.codes, d.codes)
