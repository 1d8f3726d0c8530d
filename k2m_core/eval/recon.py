"""Tokenizer reconstruction metrics (`k2m eval recon`).

- ``px_error_1080p``: mean Euclidean distance between input and re-projected keypoints over
  confident keypoints (c ≥ the model's threshold), in pixels at 1080p scale (× 1920 / max(W, H)),
  so clips of any resolution are comparable.
- ``usage/layer{n}`` (fraction of the codebook used) and ``perplexity/layer{n}`` per RVQ layer.

Where the dataset has 3D ground truth (synthetic corpora, projected mocap), over the 24 SMPL joints,
per frame, with the same pose numbers for a **constant upright A-pose** (the tokenizer's starting
pose, facing the camera, on the true root) beside them as ``apose/<metric>``, so that a number can be
told from what no 3D knowledge gives:

- ``mpjpe_mm``: root-aligned joints, camera axes (so a body facing the wrong way counts);
- ``pa_mpjpe_mm``: after a per-frame similarity (Procrustes) alignment, rotations only;
  ``pa_mpjpe_reflect_mm``: reflections allowed too. The gap between them measures depth flips:
  a body whose depth is mirrored is a reflection of the truth;
- ``facing_deg/<view>``: median angle between the predicted and true hip axis (left − right hip) in
  the camera's horizontal plane, per view of the clip's first frame (front: the body faces the
  camera; left/right: that side of the body faces it; back), and ``facing_deg`` over all frames;
- ``depth_travel_ratio``: over clips whose root moves at least `MIN_DEPTH_TRAVEL` m along the
  camera axis, the median of the predicted net travel along the axis (signed towards the truth's)
  over the true travel: 1 keeps it, 0 loses it;
- ``still_root_speed_mps``: mean predicted root speed on frames where the true root moves less
  than `STILL_SPEED` m/s (fake motion of a person who stands).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from k2m_core.data.dataset import Dataset
from k2m_core.keypoints import FRAME_SIZE_ROW, NUM_JOINTS
from k2m_core.tokenizer.losses import to_reference_pixels

LEFT_HIP, RIGHT_HIP = 1, 2  # SMPL joints
VIEWS = ("front", "left", "right", "back")
MIN_DEPTH_TRAVEL = 0.5  # metres
STILL_SPEED = 0.1  # m/s


def procrustes_align(pred: torch.Tensor, target: torch.Tensor, *, reflection: bool = False) -> torch.Tensor:
    """Similarity transform (scale, rotation — and a reflection where ``reflection`` and it fits
    better — translation) of ``pred (N, J, 3)`` that best fits ``target`` in least squares
    (Umeyama), applied to ``pred``."""
    mu_p, mu_t = pred.mean(1, keepdim=True), target.mean(1, keepdim=True)
    p, t = pred - mu_p, target - mu_t
    u, s, vh = torch.linalg.svd(p.transpose(1, 2) @ t)
    d = torch.ones_like(s)
    if not reflection:
        d[:, -1] = torch.sign(torch.linalg.det(u @ vh))
    rot = u @ torch.diag_embed(d) @ vh
    scale = (s * d).sum(-1) / (p**2).sum((1, 2)).clamp_min(1e-12)
    return scale[:, None, None] * p @ rot + mu_t


def hip_angle(joints: torch.Tensor) -> torch.Tensor:
    """Angle (radians) of the hip axis (left − right hip) in the camera's horizontal x–z plane,
    ``joints (..., 24, 3)`` → ``(...)``: 0 for a body facing the camera (its left hip on the
    image's right), ±π facing away, −π/2 its left side towards the camera."""
    axis = joints[..., LEFT_HIP, :] - joints[..., RIGHT_HIP, :]
    return torch.atan2(axis[..., 2], axis[..., 0])


def view_of(joints: torch.Tensor) -> str:
    """Which side of the body ``joints (24, 3)`` shows the camera: front, left, right or back."""
    angle = math.degrees(float(hip_angle(joints)))
    if abs(angle) <= 45:
        return "front"
    if abs(angle) >= 135:
        return "back"
    return "left" if angle < 0 else "right"


def angle_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Absolute difference of angles (radians), wrapped to [0, π]."""
    return torch.remainder(a - b + math.pi, 2 * math.pi).sub(math.pi).abs()


def codebook_stats(codes: np.ndarray, codebook_size: int) -> dict[str, float]:
    """``codes (N, Q)`` of valid positions → usage and perplexity per layer."""
    stats = {}
    for layer in range(codes.shape[1]):
        counts = np.bincount(codes[:, layer], minlength=codebook_size).astype(np.float64)
        probs = counts / max(counts.sum(), 1)
        entropy = -(probs[probs > 0] * np.log(probs[probs > 0])).sum()
        stats[f"usage/layer{layer}"] = float((counts > 0).mean())
        stats[f"perplexity/layer{layer}"] = float(np.exp(entropy))
    return stats


class PoseScores:
    """Accumulates the 3D metrics of predicted against true joint sequences."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.frames: dict[str, list[torch.Tensor]] = {"mpjpe": [], "pa": [], "pa_reflect": [], "facing": []}
        self.facing_by_view: dict[str, list[torch.Tensor]] = {view: [] for view in VIEWS}
        self.travel_ratios: list[float] = []
        self.still_speeds: list[torch.Tensor] = []

    def add(self, pred: torch.Tensor, truth: torch.Tensor) -> None:
        """One clip: ``pred, truth (F, 24, 3)`` camera-frame joints in metres."""
        pred, truth = pred.float(), truth.float()
        pred_rel, truth_rel = pred - pred[:, :1], truth - truth[:, :1]
        self.frames["mpjpe"].append((pred_rel - truth_rel).norm(dim=-1).mean(-1))
        self.frames["pa"].append((procrustes_align(pred, truth) - truth).norm(dim=-1).mean(-1))
        self.frames["pa_reflect"].append(
            (procrustes_align(pred, truth, reflection=True) - truth).norm(dim=-1).mean(-1))
        facing = angle_between(hip_angle(pred), hip_angle(truth))
        self.frames["facing"].append(facing)
        self.facing_by_view[view_of(truth[0])].append(facing)
        true_travel = float(truth[-1, 0, 2] - truth[0, 0, 2])
        if abs(true_travel) >= MIN_DEPTH_TRAVEL:
            self.travel_ratios.append(float(pred[-1, 0, 2] - pred[0, 0, 2]) * math.copysign(1, true_travel)
                                      / abs(true_travel))
        if len(truth) > 1:
            true_speed = (truth[1:, 0] - truth[:-1, 0]).norm(dim=-1) * self.fps
            pred_speed = (pred[1:, 0] - pred[:-1, 0]).norm(dim=-1) * self.fps
            self.still_speeds.append(pred_speed[true_speed < STILL_SPEED])

    def summary(self) -> dict[str, float]:
        if not self.frames["mpjpe"]:
            return {}
        cat = {name: torch.cat(values) for name, values in self.frames.items()}
        out = {"mpjpe_mm": float(cat["mpjpe"].mean()) * 1000, "pa_mpjpe_mm": float(cat["pa"].mean()) * 1000,
               "pa_mpjpe_reflect_mm": float(cat["pa_reflect"].mean()) * 1000,
               "facing_deg": math.degrees(float(cat["facing"].median()))}
        for view, values in self.facing_by_view.items():
            if values:
                out[f"facing_deg/{view}"] = math.degrees(float(torch.cat(values).median()))
                out[f"frames/{view}"] = float(sum(len(v) for v in values))
        if self.travel_ratios:
            out["depth_travel_ratio"] = float(np.median(self.travel_ratios))
            out["depth_travel_clips"] = float(len(self.travel_ratios))
        still = torch.cat(self.still_speeds) if self.still_speeds else torch.zeros(0)
        if len(still):
            out["still_root_speed_mps"] = float(still.mean())
        return out


def apose_joints(model, device: torch.device) -> torch.Tensor:
    """The constant baseline: the tokenizer's starting pose (upright A-pose facing the camera, mean
    shape) as root-relative joints ``(24, 3)``; `PoseScores` gets it placed on the true root."""
    from k2m_core.rotations import rot6d_to_matrix
    from k2m_core.tokenizer.model import NUM_BETAS, NUM_SMPL_JOINTS, SMPLHead

    rot6d = SMPLHead.initial_frame()[:NUM_SMPL_JOINTS * 6].reshape(1, NUM_SMPL_JOINTS, 6).to(device)
    rest = model.body(rot6d_to_matrix(rot6d), torch.zeros(1, NUM_BETAS, device=device),
                      torch.zeros(1, 3, device=device)).joints[0]
    return rest - rest[:1]


@torch.no_grad()
def reconstruction_metrics(model, dataset: Dataset, split: str, device: torch.device, *,
                           max_clips: int | None = None, batch_size: int = 16) -> dict[str, float]:
    clips = dataset.splits[split]
    if max_clips is not None:
        clips = clips[:max_clips]
    # Clips longer than the adapter's reach are scored in consecutive pieces.
    piece = model.config.adapter_maxlen
    items = [(int(c), lo, min(piece, int(dataset.lengths[c]) - lo))
             for c in clips for lo in range(0, int(dataset.lengths[c]), piece)]
    items.sort(key=lambda item: item[2])  # similar lengths batch together
    was_training = model.training
    model.eval()
    step = model.config.downsample
    threshold = model.config.conf_threshold
    px_sum, px_count, all_codes = 0.0, 0, []
    has_3d = "joints" in dataset.ground_truth_frames
    scores, baseline = PoseScores(dataset.fps), PoseScores(dataset.fps)
    apose = apose_joints(model, device) if has_3d else None
    for lo in range(0, len(items), batch_size):
        chunk = items[lo:lo + batch_size]
        longest = max(length for _, _, length in chunk)
        keypoints = np.zeros((len(chunk), longest, 18, 3), dtype=np.float32)
        valid = np.zeros((len(chunk), longest), dtype=bool)
        for row, (clip, start, length) in enumerate(chunk):
            keypoints[row, :length] = dataset.keypoints(clip, start, length)
            valid[row, :length] = True
        kp, ok = torch.from_numpy(keypoints).to(device), torch.from_numpy(valid).to(device)
        focal = torch.from_numpy(dataset.focals[[clip for clip, _, _ in chunk]]).to(device)
        out = model(kp, ok, focal)
        width, height = kp[:, 0, FRAME_SIZE_ROW, 0], kp[:, 0, FRAME_SIZE_ROW, 1]
        confident = (kp[..., :NUM_JOINTS, 2] >= threshold) & ok[..., None]
        err = (to_reference_pixels(out.pred_keypoints.float(), width, height)
               - to_reference_pixels(kp[..., :NUM_JOINTS, :2], width, height)).norm(dim=-1)
        px_sum += float(err[confident].sum())
        px_count += int(confident.sum())
        all_codes.append(out.codes[ok[:, ::step][:, :out.codes.shape[1]]].cpu().numpy())
        if has_3d:
            for row, (clip, start, length) in enumerate(chunk):
                truth = torch.from_numpy(dataset.ground_truth("joints", clip)[start:start + length]).to(device)
                scores.add(out.smpl.joints[row, :length], truth)
                baseline.add(apose[None] + truth[:, :1], truth)
    model.train(was_training)
    metrics = {"px_error_1080p": px_sum / max(px_count, 1), "clips": float(len(clips))}
    metrics.update(codebook_stats(np.concatenate(all_codes), model.config.codebook_size))
    metrics.update(scores.summary())
    # The baseline stands on the true root, so its travel and root speed are the truth's: not listed.
    metrics.update({f"apose/{name}": value for name, value in baseline.summary().items()
                    if not name.startswith(("frames/", "depth_travel", "still_root"))})
    return metrics
