"""Process-group setup from the launcher's environment (torchrun or anything that sets the same
variables): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist



@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group if launched with WORLD_SIZE > 1 (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                rank=rank, world_size=world_size)
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank), device


def all_reduce_mean(value: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.enabled:
        value = value.clone()
        dist.all_reduce(value)
        value /= d.world_size
    return value


def shutdown(d: Dist) -> None:
    """Leave the process group. A finished DDP wrapper lingers in reference cycles (its reducer's
    hooks on the parameters) until collected; collected after the group is gone, it can abort the
    process with SIGABRT after all the work is saved, so collect it first. No barrier here: after
    an error on one rank, waiting for the others would hang instead of failing (`fit` ends with
    one on the normal path)."""
    if d.enabled and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
