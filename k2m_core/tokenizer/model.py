"""MotionVQ-Adapter (paper §3.2–3.3, docs/design.md#tokenizer): 2D keypoints → motion tokens → SMPL → 2D again.

    keypoints (B, F, 18, 3) ─canonical framing─▶ normalise ─▶ DSTformer adapter (or none) ─▶ conv encoder (÷α)
      ─▶ residual VQ (codes (B, F/α, Q)) ─▶ conv decoder (×α) ─▶ SMPL head
      ─▶ body model (FK) ─▶ pinhole projection (eq. 3) ─▶ losses against the input keypoints

The SMPL head predicts per frame the global orientation and 23 body-joint rotations as 6D, and
the pelvis as (u, v, log s): its image position in normalised units and its scale in normalised
units per metre; adding log(max(W, H)/2) gives the pixels per metre of docs/design.md#tokenizer, so the decoder never
needs the image size and generation can decode at any canonical size (callers pass 1920×1080).
Betas are predicted once per clip from decoder features pooled over valid frames. The log-scale
(the root's depth) is low-passed over time (`depth_smoothing`, a Gaussian in frames) before it is
used: the 2D losses barely see depth, and without the filter the decoder lets it jitter to
compensate for pose errors, which turns into metres-per-second of fake root motion.
With ``tokens = "body"`` the head describes turns and steps instead, and a per-clip view places
the summed motion before the camera (`k2m_core.tokenizer.bodyframe`).

Each clip is first moved into one standard 1920×1080 shot (`k2m_core.tokenizer.framing`; not in
the paper, ``framing = "source"`` turns it off), so codes carry motion rather than where the person
stood; losses are taken in that frame, predicted keypoints are returned in the input's own frame.

Precision: networks may run under ``torch.autocast`` (bf16); quantisation, forward kinematics,
projection and losses always run in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from k2m_core.body import BodyModel
from k2m_core.body.kinematics import MIRROR as SMPL_MIRROR
from k2m_core.camera import FOCAL, project, uvs_to_point
from k2m_core.errors import UserError
from k2m_core.keypoints import FRAME_SIZE_ROW, MIRROR, NUM_JOINTS, mirror_clip, normalise_for_encoder
from k2m_core.rotations import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rot6d, rot6d_to_matrix
from k2m_core.tokenizer import losses
from k2m_core.tokenizer.bodyframe import ROOT_STEP, VIEW_SIZE, YAW_STEP, front_view, integrate, view_rotation
from k2m_core.tokenizer.config import TokenizerConfig
from k2m_core.tokenizer.convnets import ConvDecoder, ConvEncoder
from k2m_core.tokenizer.dstformer import DSTformer
from k2m_core.tokenizer.framing import CANONICAL_FOCAL, CANONICAL_SIZE, Framing, canonical_framing, reframe
from k2m_core.tokenizer.pose_limits import load_pose_limits
from k2m_core.tokenizer.quantizer import ResidualVQ
from k2m_core.tokenizer.views import (PRIOR_JOINTS, PosePrior, clip_pivot, normalise_pose, prior_losses,
                                      random_rotations, rotate_about)

NUM_SMPL_JOINTS = 24
NUM_BETAS = 10
INIT_BODY_HEIGHT_M = 1.7
INIT_HEIGHT_FILL = 0.6  # the initial body fills this share of a 16:9 frame's height
INIT_ARM_DROP = math.radians(65)  # initial shoulders: arms lowered from the T-pose into an A-pose
LOSS_NAMES = ("rvq", "rec", "vel", "smooth", "boundary", "pose", "shape", "depth", "mirror", "prior", "prior_d")


@dataclass
class SMPLMotion:
    rotmats: Tensor  # (B, F, 24, 3, 3) local rotations; joint 0 = global orientation (camera frame)
    betas: Tensor  # (B, 10)
    transl: Tensor  # (B, F, 3) SMPL transl, camera frame, metres
    joints: Tensor  # (B, F, 24, 3) posed joints, camera frame, metres

    def poses(self) -> Tensor:
        """SMPL's 72 axis-angle numbers per frame, ``(B, F, 72)``."""
        return matrix_to_axis_angle(self.rotmats).flatten(-2)

    def crop(self, frames: int) -> "SMPLMotion":
        """The first ``frames`` frames."""
        return SMPLMotion(rotmats=self.rotmats[:, :frames], betas=self.betas, transl=self.transl[:, :frames],
                          joints=self.joints[:, :frames])


@dataclass
class TokenizerOutput:
    loss: Tensor  # () weighted total, eq. 10
    terms: dict[str, Tensor]  # detached: "<name>" unweighted, "<name>_weighted" = λ·L, and "total"
    pred_keypoints: Tensor  # (B, F, 17, 2) pixels of the input frame
    smpl: SMPLMotion  # in the camera of the frame the model works in (1920×1080 unless framing = "source")
    codes: Tensor  # (B, ceil(F/α), Q) long; −1 at padded positions and dropped layers
    perplexity: Tensor  # (Q,) per-layer code perplexity of this batch (0 for dropped layers)


@dataclass
class Camera:
    """Per-clip pinhole intrinsics of the frame the model works in."""
    focal: Tensor  # (B,) pixels
    principal: Tensor | None  # (B, 2) pixels; None = the image centre

    def project(self, points: Tensor, width: Tensor, height: Tensor) -> tuple[Tensor, Tensor]:
        """``points (B, F, J, 3)`` → pixels ``(B, F, J, 2)`` and in-front mask (`k2m_core.camera.project`)."""
        principal = None if self.principal is None else self.principal[:, None, None]
        return project(points, width[:, None, None], height[:, None, None], self.focal[:, None, None], principal)


def _float32(device: torch.device):
    """A region where autocast is off (FK, projection, losses stay in float32)."""
    return torch.autocast(device_type=device.type, enabled=False)


def _masked_mean_time(features: Tensor, mask: Tensor) -> Tensor:
    """``features (B, F, C)`` averaged over frames where ``mask (B, F)``."""
    weights = mask.to(features.dtype)[..., None]
    return (features * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def masked_gaussian_smooth(values: Tensor, mask: Tensor, sigma: float) -> Tensor:
    """``values (B, F)`` low-passed over time: at each frame, a straight line fitted with Gaussian
    weights (``sigma`` frames) to the frames where ``mask (B, F)``. A line rather than a weighted
    mean, so a steady approach passes unchanged up to the clip's ends; padding never leaks in.
    Frames outside ``mask`` keep their values; ``sigma`` 0 returns ``values`` unchanged."""
    if sigma <= 0:
        return values
    radius = math.ceil(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=values.dtype, device=values.device)
    gauss = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernels = torch.stack([gauss, gauss * offsets, gauss * offsets**2])[:, None]  # (3, 1, K)
    weights = mask.to(values.dtype)[:, None]
    s0, s1, s2 = F.conv1d(weights, kernels, padding=radius).unbind(1)  # Σw, Σw·d, Σw·d² (d = t − i)
    t0, t1, _ = F.conv1d(values[:, None] * weights, kernels, padding=radius).unbind(1)  # Σw·x, Σw·d·x
    det = s0 * s2 - s1**2
    line = (s2 * t0 - s1 * t1) / det.clamp_min(1e-9)
    mean = t0 / s0.clamp_min(1e-9)  # a lone valid frame: no line to fit
    return torch.where(mask, torch.where(det > 1e-6, line, mean), values)


# The starting root scale: the body fills ~60 % of a 16:9 frame's height (normalised units per metre).
INIT_LOG_SCALE = math.log(INIT_HEIGHT_FILL * (2 * CANONICAL_SIZE[1] / max(CANONICAL_SIZE)) / INIT_BODY_HEIGHT_M)


class SMPLHead(nn.Module):
    """Decoder features → per-frame 6D rotations and root; per-clip betas. The root is the pelvis's
    (u, v, log s) in the image with camera-frame tokens; with body-frame ones it is (yaw rate, step
    x, step z, height) in units of `YAW_STEP`, `ROOT_STEP` and metres (`bodyframe.integrate`).

    Starts near an upright A-pose facing the camera (180° about x in the camera frame; the body
    frame's rest with body-frame tokens, which the front view turns the same way), pelvis at the
    image centre, body filling ~60 % of a 16:9 frame's height, betas 0."""

    def __init__(self, width: int, tokens: str = "camera") -> None:
        super().__init__()
        self.root_size = 3 if tokens == "camera" else 4
        self.to_frame = nn.Linear(width, NUM_SMPL_JOINTS * 6 + self.root_size)
        self.to_betas = nn.Linear(width, NUM_BETAS)
        for layer in (self.to_frame, self.to_betas):
            nn.init.trunc_normal_(layer.weight, std=1e-3)
        nn.init.zeros_(self.to_betas.bias)
        with torch.no_grad():
            self.to_frame.bias.copy_(self.initial_frame(tokens))

    @staticmethod
    def initial_frame(tokens: str = "camera") -> Tensor:
        axis_angle = torch.zeros(NUM_SMPL_JOINTS, 3)
        if tokens == "camera":
            axis_angle[0] = torch.tensor([math.pi, 0.0, 0.0])  # upright, facing the camera
        axis_angle[16] = torch.tensor([0.0, 0.0, -INIT_ARM_DROP])  # left arm down
        axis_angle[17] = torch.tensor([0.0, 0.0, INIT_ARM_DROP])  # right arm down
        rot6d = matrix_to_rot6d(axis_angle_to_matrix(axis_angle)).flatten()
        root = [0.0, 0.0, INIT_LOG_SCALE] if tokens == "camera" else [0.0, 0.0, 0.0, 0.0]
        return torch.cat([rot6d, torch.tensor(root)])

    def forward(self, features: Tensor, frame_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``features (B, F, width)`` → ``rot6d (B, F, 24, 6)``, root ``(B, F, 3 or 4)``, ``betas (B, 10)``."""
        frame = self.to_frame(features)
        rot6d = frame[..., :-self.root_size].unflatten(-1, (NUM_SMPL_JOINTS, 6))
        betas = self.to_betas(_masked_mean_time(features, frame_mask))
        return rot6d, frame[..., -self.root_size:], betas


class MotionVQAdapter(nn.Module):
    def __init__(self, config: TokenizerConfig, body: BodyModel) -> None:
        super().__init__()
        self.config = config.validate()
        self.body = body
        self.downsample = config.downsample
        if config.adapter == "dstformer":
            self.adapter = DSTformer(in_dim=3, num_joints=NUM_JOINTS, dim=config.adapter_dim, rep=config.adapter_rep,
                                     depth=config.adapter_depth, heads=config.adapter_heads,
                                     mlp_ratio=config.adapter_mlp_ratio, maxlen=config.adapter_maxlen)
            self.joint_merge = nn.Linear(NUM_JOINTS * config.adapter_rep, config.width)  # 17 tokens → 1 per frame
            encoder_in = config.width
        else:
            self.adapter, self.joint_merge = None, None
            encoder_in = NUM_JOINTS * 3 + 1  # flattened normalised keypoints + log aspect
        conv = dict(depth=config.resnet_depth, growth=config.dilation_growth, dropout=config.dropout)
        self.encoder = ConvEncoder(encoder_in, config.width, config.code_dim, config.down_stages, **conv)
        self.quantizer = ResidualVQ(config.num_quantizers, config.codebook_size, config.code_dim,
                                    decay=config.ema_decay, dropout=config.quantizer_dropout)
        self.decoder = ConvDecoder(config.code_dim, config.width, config.down_stages, **conv)
        self.head = SMPLHead(config.width, config.tokens)
        self.view_head = None  # body-frame tokens: each clip's view from its encoder features, unquantised
        if config.tokens == "body":
            self.view_head = nn.Linear(config.code_dim, VIEW_SIZE)
            nn.init.trunc_normal_(self.view_head.weight, std=1e-3)
            with torch.no_grad():
                self.view_head.bias.copy_(front_view(1, INIT_LOG_SCALE)[0])
        # The 2D pose prior exists only where it trains (a parameter no loss reaches would stall DDP).
        self.prior = PosePrior() if config.lambda_prior > 0 else None
        limits = load_pose_limits()
        self.register_buffer("theta_min", limits.theta_min, persistent=False)
        self.register_buffer("theta_max", limits.theta_max, persistent=False)

    # ---------------------------------------------------------------- input side

    @staticmethod
    def frame_size(keypoints: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Per-clip ``(W, H)`` from row 17 of the valid frames, ``(B,)`` each (1920×1080 when a
        clip has none: padded frames may hold zeros there)."""
        size = (keypoints[:, :, FRAME_SIZE_ROW, :2] * valid[..., None]).amax(dim=1)  # (B, 2)
        fallback = torch.tensor(CANONICAL_SIZE, dtype=size.dtype, device=size.device)
        size = torch.where((size > 0).all(-1, keepdim=True), size, fallback)
        return size[:, 0], size[:, 1]

    def _to_working_frame(self, keypoints: Tensor, valid: Tensor,
                          focal: Tensor | None) -> tuple[Tensor, Framing | None, Camera]:
        """The clips in the frame the model works in, the `Framing` that took them there (None with
        ``framing = "source"``: the input's own frame) and the camera that sees that frame.

        ``focal (B,)``: each clip's focal length in pixels of its own frame (None: the paper's
        5000 px). With ``focal_source = "paper"`` the model ignores it and projects every frame it
        works in with f = 5000 px about the image centre, as the paper does."""
        batch = keypoints.shape[0]
        if focal is None:
            focal = keypoints.new_full((batch,), FOCAL)
        focal = focal.float()
        framing = None
        if self.config.framing == "canonical":
            jitter = None
            if self.training and self.config.framing_jitter > 0:
                jitter = (torch.rand(batch, device=keypoints.device) * 2 - 1) * self.config.framing_jitter
            framing = canonical_framing(keypoints, valid, self.config.conf_threshold, jitter)
            width, height = self.frame_size(keypoints, valid)
            keypoints = reframe(keypoints, valid, framing)
        if self.config.focal_source == "paper":
            return keypoints, framing, Camera(keypoints.new_full((batch,), FOCAL), None)
        if framing is None:
            return keypoints, None, Camera(focal, None)
        return keypoints, framing, Camera(*framing.camera(focal, width, height))

    def _pad(self, keypoints: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Pad frames to a multiple of α (padded frames invalid)."""
        extra = -keypoints.shape[1] % self.downsample
        return F.pad(keypoints, (0, 0, 0, 0, 0, extra)), F.pad(valid, (0, extra), value=False)

    def _encode_latent(self, keypoints: Tensor, valid: Tensor, width: Tensor, height: Tensor) -> tuple[Tensor, Tensor]:
        """Padded ``keypoints (B, F', 18, 3)``, ``valid (B, F')``, frame size ``(B,)`` each →
        latent ``(B, T, D)`` and token mask ``(B, T)``."""
        size_row = torch.stack([width, height, torch.ones_like(width)], dim=-1)[:, None, None]
        clip = torch.cat([keypoints[:, :, :NUM_JOINTS], size_row.expand(-1, keypoints.shape[1], 1, 3)], dim=2)
        joints = normalise_for_encoder(clip, self.config.conf_threshold) * valid[..., None, None]
        log_aspect = torch.log(width / height)
        if self.adapter is None:
            aspect = log_aspect[:, None, None].expand(-1, joints.shape[1], 1)
            features = torch.cat([joints.flatten(2), aspect], dim=-1)
        else:
            frames, maxlen = joints.shape[1], self.config.adapter_maxlen
            if frames > maxlen:
                raise UserError(f"{frames} frames (padded to a multiple of {self.downsample}) exceed the "
                                f"adapter's maxlen {maxlen}: encode long clips in windows or raise adapter_maxlen")
            offset = 0
            if self.training:  # every row of the temporal embedding trains, so long clips encode too
                offset = int(torch.randint(maxlen - frames + 1, ()))
            features = self.joint_merge(self.adapter(joints, valid, log_aspect, offset).flatten(2))
        latent, token_mask = self.encoder(features.transpose(1, 2), valid)
        return latent.transpose(1, 2), token_mask

    # ---------------------------------------------------------------- output side

    def _view(self, latent: Tensor) -> Tensor | None:
        """Each clip's view ``(B, 6)`` from its unquantised latent at the first token, whose frames
        the view places (None with camera-frame tokens)."""
        if self.view_head is None:
            return None
        with _float32(latent.device):
            return self.view_head(latent[:, 0].float())

    def _decode_latent(self, latent: Tensor, token_mask: Tensor, frame_mask: Tensor, width: Tensor,
                       height: Tensor, camera: Camera, view: Tensor | None = None) -> tuple[SMPLMotion, Tensor, Tensor]:
        """latent ``(B, T, D)`` → SMPL motion of ``T·α`` frames (betas pooled over ``frame_mask``),
        its COCO-17 keypoints in 3D ``(B, T·α, 17, 3)`` and the root's log-scale ``(B, T·α)``;
        ``view (B, 6)`` places body-frame motion before the camera (`k2m_core.tokenizer.bodyframe`)."""
        features, _ = self.decoder(latent.transpose(1, 2), token_mask)
        with _float32(latent.device):  # bf16 would round the pelvis to ~2 px and depth to ~0.4 %
            rot6d, root, betas = self.head(features.transpose(1, 2).float(), frame_mask)
            batch, frames = rot6d.shape[:2]
            rotmats = rot6d_to_matrix(rot6d)
            half = torch.maximum(width, height)[:, None].float() / 2
            principal = None if camera.principal is None else camera.principal[:, None]
            if view is None:
                log_scale = masked_gaussian_smooth(root[..., 2], frame_mask, self.config.depth_smoothing)
                uvs = torch.cat([root[..., :2], (log_scale + torch.log(half))[..., None]], dim=-1)
                pelvis = uvs_to_point(uvs, width[:, None].float(), height[:, None].float(), camera.focal[:, None],
                                      principal)  # (B, F, 3)
            else:
                orient, root = integrate(rotmats[:, :, 0], root[..., 0] * YAW_STEP, root[..., 1:3] * ROOT_STEP,
                                         root[..., 3])
                root = torch.stack([masked_gaussian_smooth(axis, frame_mask, self.config.depth_smoothing)
                                    for axis in root.unbind(-1)], dim=-1)
                rotation = view_rotation(view)[:, None]  # (B, 1, 3, 3)
                first = torch.cat([view[:, 3:5], view[:, 5:6] + torch.log(half)], dim=-1)
                root0 = uvs_to_point(first, width.float(), height.float(), camera.focal, camera.principal)  # (B, 3)
                rotmats = torch.cat([(rotation @ orient)[:, :, None], rotmats[:, :, 1:]], dim=2)
                pelvis = (rotation @ root[..., None])[..., 0] + root0[:, None]
                log_scale = torch.log(camera.focal[:, None] / pelvis[..., 2].clamp_min(1e-3) / half)
            transl = pelvis - self.body.rest_joints(betas)[:, None, 0]
            out = self.body(rotmats.flatten(0, 1), betas.repeat_interleave(frames, dim=0), transl.flatten(0, 1))
        motion = SMPLMotion(rotmats=rotmats, betas=betas, transl=transl,
                            joints=out.joints.unflatten(0, (batch, frames)))
        return motion, out.keypoints.unflatten(0, (batch, frames)), log_scale

    # ---------------------------------------------------------------- public API

    def forward(self, keypoints: Tensor, valid: Tensor, focal: Tensor | None = None) -> TokenizerOutput:
        """``keypoints (B, F, 18, 3)`` float (pixels, confidences, row 17 = (W, H, 1)),
        ``valid (B, F)`` bool (False = padding), ``focal (B,)`` each clip's focal length in pixels
        (None: 5000) → losses, predictions and codes."""
        frames = keypoints.shape[1]
        keypoints, valid = keypoints.float(), valid.bool()
        keypoints, framing, camera = self._to_working_frame(keypoints, valid, focal)  # losses are taken there
        padded, frame_mask = self._pad(keypoints, valid)
        width, height = self.frame_size(keypoints, valid)
        latent, token_mask = self._encode_latent(padded, frame_mask, width, height)
        with _float32(latent.device):
            rvq = self.quantizer(latent.float(), token_mask)
        motion, keypoints3d, log_scale = self._decode_latent(rvq.latent, token_mask, frame_mask, width, height,
                                                             camera, self._view(latent))
        motion, keypoints3d, log_scale = motion.crop(frames), keypoints3d[:, :frames], log_scale[:, :frames]
        with _float32(latent.device):
            pred_px, in_front = camera.project(keypoints3d, width, height)
            unweighted = self._losses(keypoints, valid, pred_px, in_front, motion, width, height)
            unweighted["depth"] = losses.depth_speed_loss(log_scale, valid)
            unweighted["rvq"] = rvq.commitment
        unweighted["mirror"] = self._mirror_pull(keypoints, valid, pred_px, in_front, motion, width, height, camera)
        unweighted.update(self._pose_prior(keypoints, valid, keypoints3d, motion, width, height, camera))
        # The discriminator's own term trains only the prior (its fakes are detached), at weight 1.
        weighted = {name: (1.0 if name == "prior_d" else getattr(self.config, f"lambda_{name}")) * unweighted[name]
                    for name in LOSS_NAMES}
        loss = sum(weighted.values())
        terms = {name: unweighted[name].detach() for name in LOSS_NAMES}
        terms.update({f"{name}_weighted": weighted[name].detach() for name in LOSS_NAMES})
        terms["total"] = loss.detach()
        if framing is not None:
            pred_px = framing.to_source(pred_px)
        return TokenizerOutput(loss=loss, terms=terms, pred_keypoints=pred_px, smpl=motion, codes=rvq.codes,
                               perplexity=rvq.perplexity)

    def _targets(self, keypoints: Tensor, valid: Tensor, width: Tensor, height: Tensor) -> tuple[Tensor, Tensor]:
        """The input keypoints in 1080p-scale pixels ``(B, F, 17, 2)`` and where they count ``(B, F, 17)``:
        valid frames, confidence at least ``conf_threshold``."""
        true = losses.to_reference_pixels(keypoints[..., :NUM_JOINTS, :2], width, height)
        return true, valid[..., None] & (keypoints[..., :NUM_JOINTS, 2] >= self.config.conf_threshold)

    def _losses(self, keypoints: Tensor, valid: Tensor, pred_px: Tensor, in_front: Tensor, motion: SMPLMotion,
                width: Tensor, height: Tensor) -> dict[str, Tensor]:
        """Eqs. 4–9 (unweighted) in 1080p-scale pixels (see `k2m_core.tokenizer.losses`)."""
        true, counted = self._targets(keypoints, valid, width, height)
        pred = losses.to_reference_pixels(pred_px, width, height)
        seen = valid[..., None] & in_front  # frames that exist, keypoints in front of the camera
        confident = counted & in_front
        body_pose = matrix_to_axis_angle(motion.rotmats[:, :, 1:])  # (B, F, 23, 3)
        return {
            "rec": losses.reconstruction_loss(pred, true, confident),
            "vel": losses.velocity_loss(pred, true, confident),
            "smooth": losses.smoothness_loss(pred, seen),
            "boundary": losses.boundary_loss(pred, true, confident, valid),
            "pose": losses.pose_limit_loss(body_pose, self.theta_min, self.theta_max, valid),
            "shape": losses.shape_loss(motion.betas, self.config.shape_tau),
        }

    def _mirror_pull(self, keypoints: Tensor, valid: Tensor, pred_px: Tensor, in_front: Tensor, motion: SMPLMotion,
                     width: Tensor, height: Tensor, camera: Camera) -> Tensor:
        """`losses.mirror_pull_loss` for this batch (0 unless training with λ_mirror > 0): decode the
        mirrored clips without gradients or codebook updates, mirror the motion back (x → −x, left ↔
        right), and pull the clips whose twin fits their 2D keypoints better by ``mirror_margin``."""
        if not (self.training and self.config.lambda_mirror > 0):
            return pred_px.new_zeros(())
        frames = keypoints.shape[1]
        with torch.no_grad():
            padded, frame_mask = self._pad(mirror_clip(keypoints), valid)
            latent, token_mask = self._encode_latent(padded, frame_mask, width, height)
            view = self._view(latent)
            with _float32(latent.device):
                latent = self.quantizer.codes_to_latent(self.quantizer.encode(latent.float(), token_mask))
            twin_camera = camera  # the mirrored image's principal point is the mirror of the clip's
            if camera.principal is not None:
                twin_camera = Camera(camera.focal, torch.stack([width - camera.principal[:, 0],
                                                                camera.principal[:, 1]], dim=-1))
            twin, twin_keypoints, _ = self._decode_latent(latent, token_mask, frame_mask, width, height, twin_camera,
                                                          view)
            with _float32(latent.device):
                flip = torch.tensor([-1.0, 1.0, 1.0], device=latent.device)
                twin_joints = twin.joints[:, :frames, list(SMPL_MIRROR)] * flip
                twin_px, twin_in_front = camera.project(twin_keypoints[:, :frames, list(MIRROR)] * flip, width, height)
                true, counted = self._targets(keypoints, valid, width, height)
                own_error = losses.clip_pixel_error(losses.to_reference_pixels(pred_px, width, height), true,
                                                    counted & in_front)
                twin_error = losses.clip_pixel_error(losses.to_reference_pixels(twin_px, width, height), true,
                                                     counted & twin_in_front)
                pull = twin_error < self.config.mirror_margin * own_error
        with _float32(motion.joints.device):
            return losses.mirror_pull_loss(motion.joints, twin_joints, pull, valid)

    def _pose_prior(self, keypoints: Tensor, valid: Tensor, keypoints3d: Tensor, motion: SMPLMotion,
                    width: Tensor, height: Tensor, camera: Camera) -> dict[str, Tensor]:
        """The 2D pose prior's terms (`k2m_core.tokenizer.views`), 0 unless training with λ_prior > 0:
        the decoded bodies turned to a random view each and projected with the clip's camera
        (``prior``, the tokenizer's), against the batch's own confident 2D poses (``prior_d``, the
        discriminator's), as a least-squares GAN."""
        zero = keypoints.new_zeros(())
        if not self.training or self.prior is None:
            return {"prior": zero, "prior_d": zero}
        with _float32(keypoints.device):
            rotation = random_rotations(len(keypoints3d), math.radians(self.config.view_elevation_deg),
                                        device=keypoints.device)
            turned = rotate_about(keypoints3d, rotation, clip_pivot(motion.joints[:, :, 0], valid))
            turned_px, turned_front = camera.project(turned, width, height)
            true, counted = self._targets(keypoints, valid, width, height)
            real = normalise_pose(true[counted[..., list(PRIOR_JOINTS)].all(-1)])
            fake = normalise_pose(losses.to_reference_pixels(turned_px, width, height)[valid & turned_front.all(-1)])
            discriminator, tokenizer = prior_losses(self.prior, real, fake)
        return {"prior": tokenizer, "prior_d": discriminator}

    @torch.no_grad()
    def reconstruct(self, keypoints: Tensor, valid: Tensor, focal: Tensor | None = None
                    ) -> tuple[SMPLMotion, Tensor, Tensor]:
        """Encode, quantise and decode without losses: ``keypoints (B, F, 18, 3)``, ``valid (B, F)``,
        ``focal (B,)`` → the SMPL motion (camera frame), its COCO-17 keypoints in 3D
        ``(B, F, 17, 3)`` and the focal length ``(B,)`` of the frame the model works in."""
        frames = keypoints.shape[1]
        valid = valid.bool()
        keypoints, _, camera = self._to_working_frame(keypoints.float(), valid, focal)
        padded, frame_mask = self._pad(keypoints, valid)
        width, height = self.frame_size(keypoints, valid)
        latent, token_mask = self._encode_latent(padded, frame_mask, width, height)
        with _float32(latent.device):
            quantised = self.quantizer.codes_to_latent(self.quantizer.encode(latent.float(), token_mask))
        motion, keypoints3d, _ = self._decode_latent(quantised, token_mask, frame_mask, width, height, camera,
                                                     self._view(latent))
        return motion.crop(frames), keypoints3d[:, :frames], camera.focal

    def encode(self, keypoints: Tensor, valid: Tensor, focal: Tensor | None = None) -> Tensor:
        """Motion tokens ``(B, ceil(F/α), Q)`` long (−1 at fully padded positions). Call ``.eval()``
        first for deterministic codes; never changes the codebooks."""
        valid = valid.bool()
        keypoints, _, _ = self._to_working_frame(keypoints.float(), valid, focal)
        padded, frame_mask = self._pad(keypoints, valid)
        latent, token_mask = self._encode_latent(padded, frame_mask, *self.frame_size(padded, frame_mask))
        with _float32(latent.device):
            return self.quantizer.encode(latent.float(), token_mask)

    def codes_to_latent(self, codes: Tensor) -> Tensor:
        """``codes (B, T, q)``, q ≤ Q (−1 = none) → quantised latent ``(B, T, D)``."""
        return self.quantizer.codes_to_latent(codes)

    @property
    def generation_focal(self) -> float:
        """The focal length (pixels, principal point at the centre) `decode` places motion for by
        default: the camera the model learned in."""
        return FOCAL if self.config.focal_source == "paper" else CANONICAL_FOCAL

    def decode(self, codes: Tensor, width: Tensor, height: Tensor, lengths: Tensor | None = None,
               focal: float | None = None, yaw: Tensor | None = None) -> SMPLMotion:
        """Motion tokens ``(B, T, q)`` (q ≤ Q layers; −1 marks padding) → SMPL motion of ``T·α``
        frames, or ``max(lengths)`` frames when ``lengths (B,)`` says how many frames each clip has
        (betas are then pooled over those frames only). ``width``/``height`` ``(B,)`` set the camera
        the motion is placed for; generation passes the canonical 1920×1080. ``focal`` (pixels,
        principal point at the centre) defaults to the camera the model learned in: 5000 px with
        ``focal_source = "paper"``, else `CANONICAL_FOCAL` (a subject about 5 m away once framed).
        ``yaw (B,)`` radians: the view of body-frame tokens (`bodyframe.front_view`; None: the front);
        camera-frame tokens carry their view and refuse one."""
        token_mask = codes[..., 0] >= 0
        frame_mask = token_mask.repeat_interleave(self.downsample, dim=1)
        frames = frame_mask.shape[1]
        if lengths is not None:
            frame_mask = frame_mask & (torch.arange(frames, device=codes.device)[None] < lengths[:, None])
            frames = int(lengths.max())
        latent = self.codes_to_latent(codes)
        width = torch.as_tensor(width, dtype=torch.float32, device=codes.device).expand(codes.shape[0])
        height = torch.as_tensor(height, dtype=torch.float32, device=codes.device).expand(codes.shape[0])
        if focal is None:
            focal = self.generation_focal
        camera = Camera(torch.full((codes.shape[0],), float(focal), device=codes.device), None)
        if self.view_head is None and yaw is not None:
            raise UserError("this tokenizer's tokens are in the camera frame, so the view comes with them; "
                            "choosing a view needs a tokenizer trained with tokens = \"body\"")
        view = None if self.view_head is None else front_view(len(codes), INIT_LOG_SCALE, codes.device, yaw)
        motion, _, _ = self._decode_latent(latent, token_mask, frame_mask, width, height, camera, view)
        return motion.crop(frames)
