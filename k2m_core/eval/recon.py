"""Tokenizer reconstruction metrics (`k2m eval recon`).

- ``px_error_1080p``: mean Euclidean distance between input and re-projected keypoints over
  confident keypoints (c ≥ the model's threshold), in pixels at 1080p scale (× 1920 / max(W, H)),
  so clips of any resolution are comparable.
- ``usage/layer{n}`` (fraction of the codebook used) and ``perplexity/layer{n}`` per RVQ layer.
- Where the dataset has 3D ground truth (synthetic corpora, projected mocap): ``mpjpe_mm`` of
  root-aligned joints and ``pa_mpjpe_mm`` after a per-frame similarity (Procrustes) alignment.
"""

from __future__ import annotations

import numpy as np
import torch

from k2m_core.data.dataset import Dataset
from k2m_core.keypoints import FRAME_SIZE_ROW, NUM_JOINTS
from k2m_core.tokenizer.losses import to_reference_pixels


def procrustes_align(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Similarity transform (scale, rotation, translation) of ``pred (N, J, 3)`` that best fits
    ``target`` in least squares (Umeyama), applied to ``pred``."""
    mu_p, mu_t = pred.mean(1, keepdim=True), target.mean(1, keepdim=True)
    p, t = pred - mu_p, target - mu_t
    u, s, vh = torch.linalg.svd(p.transpose(1, 2) @ t)
    sign = torch.sign(torch.linalg.det(u @ vh))  # no reflections
    d = torch.ones_like(s)
    d[:, -1] = sign
    rot = u @ torch.diag_embed(d) @ vh
    scale = (s * d).sum(-1) / (p**2).sum((1, 2)).clamp_min(1e-12)
    return scale[:, None, None] * p @ rot + mu_t


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
    mpjpe, pa_mpjpe = [], []
    has_3d = "joints" in dataset.ground_truth_frames
    for lo in range(0, len(items), batch_size):
        chunk = items[lo:lo + batch_size]
        longest = max(length for _, _, length in chunk)
        keypoints = np.zeros((len(chunk), longest, 18, 3), dtype=np.float32)
        valid = np.zeros((len(chunk), longest), dtype=bool)
        for row, (clip, start, length) in enumerate(chunk):
            keypoints[row, :length] = dataset.keypoints(clip, start, length)
            valid[row, :length] = True
        kp, ok = torch.from_numpy(keypoints).to(device), torch.from_numpy(valid).to(device)
        out = model(kp, ok)
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
                pred = out.smpl.joints[row, :length].float()
                pred_rel, truth_rel = pred - pred[:, :1], truth - truth[:, :1]
                mpjpe.append((pred_rel - truth_rel).norm(dim=-1).mean(-1).cpu())
                pa_mpjpe.append((procrustes_align(pred, truth) - truth).norm(dim=-1).mean(-1).cpu())
    model.train(was_training)
    metrics = {"px_error_1080p": px_sum / max(px_count, 1), "clips": float(len(clips))}
    metrics.update(codebook_stats(np.concatenate(all_codes), model.config.codebook_size))
    if has_3d:
        metrics["mpjpe_mm"] = float(torch.cat(mpjpe).mean()) * 1000
        metrics["pa_mpjpe_mm"] = float(torch.cat(pa_mpjpe).mean()) * 1000
    return metrics
