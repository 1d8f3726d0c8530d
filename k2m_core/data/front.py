"""`k2m data front`: a dataset of every clip seen again from the front (`k2m_core.tokenizer.front`).

Each clip's keypoints are replaced by the tokenizer's own 3D of it, turned to face the camera at
the first frame and projected in the tokenizer's canonical 1920×1080 frame (focal length: that
frame's). Ids, captions, videos, splits and fps stay; 3D ground truth joints are turned the same
way, so `k2m eval recon` still scores the new file against the truth. The file's attributes
record ``view = "front"`` and the tokenizer's fingerprint; text models trained on its tokens
generate facing the camera (`k2m_core.t2m.config.TokenSpec.view`). Cached text features and tokens
are not carried (recompute them on the new file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from k2m_core.data.dataset import Dataset, DatasetWriter
from k2m_core.errors import UserError

FRONT = "front"


@torch.no_grad()
def front_clips(tokenizer: torch.nn.Module, dataset: Dataset, clips: np.ndarray, device: torch.device
                ) -> list[tuple[np.ndarray, float, float, float, np.ndarray]]:
    """For each clip index of ``clips`` (similar lengths together): ``(keypoints (F, 18, 3), focal,
    yaw, offset (3,), pivot (3,))`` of it seen from the front (`seen_from_front`). Clips longer
    than a DSTformer adapter's reach are decoded in consecutive windows."""
    from k2m_core.tokenizer.front import seen_from_front

    config = tokenizer.config
    window = config.adapter_maxlen if config.adapter == "dstformer" else 1 << 30
    lengths = dataset.lengths[clips]
    keypoints = np.zeros((len(clips), int(lengths.max()), 18, 3), dtype=np.float32)
    valid = np.zeros(keypoints.shape[:2], dtype=bool)
    for row, clip in enumerate(clips):
        keypoints[row, :lengths[row]] = dataset.keypoints(int(clip))
        valid[row, :lengths[row]] = True
    kp, ok = torch.from_numpy(keypoints).to(device), torch.from_numpy(valid).to(device)
    focal = torch.from_numpy(dataset.focals[clips]).to(device)
    parts = [tokenizer.reconstruct(kp[:, lo:lo + window], ok[:, lo:lo + window], focal)
             for lo in range(0, kp.shape[1], window)]
    joints = torch.cat([motion.joints for motion, _, _ in parts], dim=1)
    keypoints3d = torch.cat([points for _, points, _ in parts], dim=1)
    working_focal = parts[0][2]
    front, yaw, offset = seen_from_front(joints, keypoints3d, parts[0][0].rotmats[:, 0, 0], ok, working_focal)
    front, pivot = front.cpu().numpy(), joints[:, 0, 0].cpu().numpy()
    offset = offset.cpu().numpy()
    return [(front[row, :lengths[row]], float(working_focal[row]), float(yaw[row]), offset[row], pivot[row])
            for row in range(len(clips))]


def front_dataset(path: Path, tokenizer: torch.nn.Module, fingerprint: str, out: Path, *, force: bool = False,
                  command: str = "", batch_size: int = 32, progress: Callable[[int], None] | None = None) -> dict:
    """Write ``out``: every clip of ``path`` seen from the front by ``tokenizer`` (eval mode, on its
    device; ``fingerprint`` is recorded as the file's ``view_tokenizer``)."""
    from k2m_core.tokenizer.front import turn_points

    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to overwrite it")
    if out.exists() and out.resolve() == Path(path).resolve():
        raise UserError(f"--out {out} is the input; write the front-view dataset to a new file")
    ds = Dataset(path)
    if ds.attrs.get("view") == FRONT:
        raise UserError(f"{path}: is already seen from the front (made by `k2m data front`); give the original")
    device = next(tokenizer.parameters()).device
    has_joints = "joints" in ds.ground_truth_frames
    order = np.argsort(ds.lengths, kind="stable")
    results: dict[int, tuple] = {}
    for lo in range(0, len(order), batch_size):
        chunk = order[lo:lo + batch_size]
        for clip, result in zip(chunk, front_clips(tokenizer, ds, chunk, device)):
            results[int(clip)] = result
        if progress is not None:
            progress(len(chunk))
    yaws = []
    attrs = {"view": FRONT, "view_tokenizer": fingerprint}
    with DatasetWriter(out, fps=ds.fps, creation_command=command, split_seed=int(ds.attrs.get("split_seed", 0)),
                       attrs=attrs) as writer:
        for i in range(len(ds)):
            keypoints, focal, yaw, offset, pivot = results[i]
            gt = None
            if has_joints:
                truth = torch.from_numpy(ds.ground_truth("joints", i))[None]
                gt = {"joints": turn_points(truth, torch.tensor([-yaw]), torch.from_numpy(pivot)[None],
                                            torch.from_numpy(offset)[None])[0].numpy()}
            writer.add_clip(ds.ids[i], keypoints, ds.captions(i), source=ds.sources[i], video=ds.videos[i],
                            gt_frames=gt, focal=focal)
            yaws.append(yaw)
    notes = []
    dropped = sorted(set(ds.ground_truth_frames) - {"joints"}) + list(ds.ground_truth_clips)
    if dropped:
        notes.append(f"ground truth {', '.join(dropped)} not carried (only joints are turned)")
    if ds.text_encoders:
        notes.append("cached text features dropped: run `k2m data encode-text` on the new file")
    views = np.degrees(np.abs(np.array(yaws)))
    return {"clips": len(ds), "turned_over_45deg": int((views > 45).sum()), "notes": notes}


@torch.no_grad()
def front_tokens(tokenizer: torch.nn.Module, dataset: Dataset, clips: np.ndarray, *, batch_size: int = 32
                 ) -> list[np.ndarray]:
    """The tokens ``(T_i, Q)`` of each clip of ``clips`` seen from the front, without writing a file:
    what a model trained on a `k2m data front` file reads of clips as filmed."""
    device = next(tokenizer.parameters()).device
    clips = np.asarray(clips, dtype=np.int64)
    order = np.argsort(dataset.lengths[clips], kind="stable")
    out: list[np.ndarray | None] = [None] * len(clips)
    for lo in range(0, len(order), batch_size):
        rows = order[lo:lo + batch_size]
        seen = front_clips(tokenizer, dataset, clips[rows], device)
        frames = max(len(keypoints) for keypoints, *_ in seen)
        keypoints = torch.zeros(len(rows), frames, 18, 3, device=device)
        valid = torch.zeros(len(rows), frames, dtype=torch.bool, device=device)
        for row, (points, *_) in enumerate(seen):
            keypoints[row, :len(points)] = torch.from_numpy(points).to(device)
            valid[row, :len(points)] = True
        focal = torch.tensor([focal for _, focal, *_ in seen], device=device)
        window = tokenizer.config.adapter_maxlen if tokenizer.config.adapter == "dstformer" else 1 << 30
        codes = torch.cat([tokenizer.encode(keypoints[:, at:at + window], valid[:, at:at + window], focal)
                           for at in range(0, frames, window)], dim=1).cpu().numpy()
        for row, at in enumerate(rows):
            out[at] = codes[row, :-(-len(seen[row][0]) // tokenizer.config.downsample)]
    return out
