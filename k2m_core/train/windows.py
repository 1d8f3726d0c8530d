"""Random fixed-length keypoint windows from a dataset file.

A batch is a pure function of ``(seed, step)``: the global batch is drawn from a generator seeded
with both, and each DDP rank takes its contiguous slice. So resuming needs no loader state, and
a 2-process run sees exactly the batch a 1-process run would. Clips shorter than the window are
zero-padded with ``valid = False``. Optional horizontal mirroring (a mirrored video is still a
valid video) flips x and swaps left/right keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from k2m_core.data.dataset import Dataset
from k2m_core.errors import UserError
from k2m_core.keypoints import mirror_clip

IN_MEMORY_BYTES = 2 << 30  # datasets below this are read into RAM once per process


@dataclass
class WindowBatch:
    keypoints: torch.Tensor  # (B, W, 18, 3) float32
    valid: torch.Tensor  # (B, W) bool
    clip_index: torch.Tensor  # (B,) int64
    focal: torch.Tensor  # (B,) float32: each clip's focal length in pixels

    def __len__(self) -> int:
        return self.keypoints.shape[0]

    def model_inputs(self) -> dict:
        return {"keypoints": self.keypoints, "valid": self.valid, "focal": self.focal}

    def to(self, device) -> "WindowBatch":
        return WindowBatch(self.keypoints.to(device, non_blocking=True), self.valid.to(device),
                           self.clip_index.to(device), self.focal.to(device))


class WindowSampler(torch.utils.data.Dataset):
    """``sampler[step]`` → this rank's `WindowBatch` of global step ``step``."""

    def __init__(self, dataset: Dataset, split: str, window: int, global_batch: int, seed: int, *,
                 rank: int = 0, world_size: int = 1, mirror: float = 0.0) -> None:
        if global_batch % world_size:
            raise UserError(f"--batch-size {global_batch} must be divisible by the {world_size} processes")
        self.clips = dataset.splits[split]
        if len(self.clips) == 0:
            raise UserError(f"{dataset.path}: the {split!r} split is empty; make a bigger dataset or change the split")
        self.dataset = dataset
        self.window, self.global_batch, self.seed = window, global_batch, seed
        self.rank, self.world_size, self.mirror = rank, world_size, mirror
        self.lengths = dataset.lengths[self.clips]  # per split clip
        self._memory: np.ndarray | None = None

    def __len__(self) -> int:  # steps are unbounded; DataLoader samplers pass explicit step numbers
        return 1 << 62

    def _frames(self, clip: int, start: int, length: int) -> np.ndarray:
        length = min(length, int(self.dataset.lengths[clip]) - start)
        if self._memory is None and self.dataset.total_frames * 18 * 3 * 4 < IN_MEMORY_BYTES:
            self._memory = self.dataset.read_array("keypoints")
        if self._memory is not None:
            lo = int(self.dataset.offsets[clip]) + start
            return self._memory[lo:lo + length]
        return self.dataset.keypoints(clip, start, length)

    def __getitem__(self, step: int) -> WindowBatch:
        rng = np.random.default_rng([self.seed, step])
        pick = rng.integers(len(self.clips), size=self.global_batch)
        starts = (rng.random(self.global_batch) * np.maximum(self.lengths[pick] - self.window + 1, 1)).astype(int)
        flips = rng.random(self.global_batch) < self.mirror
        per_rank = self.global_batch // self.world_size
        mine = slice(self.rank * per_rank, (self.rank + 1) * per_rank)
        keypoints = np.zeros((per_rank, self.window, 18, 3), dtype=np.float32)
        valid = np.zeros((per_rank, self.window), dtype=bool)
        for row, (k, start, flip) in enumerate(zip(pick[mine], starts[mine], flips[mine])):
            frames = self._frames(int(self.clips[k]), int(start), self.window)
            keypoints[row, :len(frames)] = frames
            valid[row, :len(frames)] = True
            if flip:
                keypoints[row, :len(frames)] = mirror_clip(frames)
        clips = self.clips[pick[mine]]
        return WindowBatch(torch.from_numpy(keypoints), torch.from_numpy(valid), torch.from_numpy(clips.astype(np.int64)),
                           torch.from_numpy(self.dataset.focals[clips]))
