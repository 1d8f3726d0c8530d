"""Checkpoints: weights as safetensors, training state beside them, written atomically.

``checkpoints/step_00001000/{model.safetensors, state.pt}`` plus ``checkpoints/latest``
naming the newest complete one. A checkpoint directory is built under a temporary name and
renamed when complete. Loading never runs pickled code: safetensors for weights,
``torch.load(weights_only=True)`` for optimizer, scheduler and RNG state. Batches are a pure
function of (seed, step), so no data-loader state needs saving.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from k2m_core.atomic import write_bytes_atomic
from k2m_core.runs import CHECKPOINTS, LATEST, WEIGHTS, load_weights


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def save_weights(model: torch.nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in unwrap(model).state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata or {})
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, optimizer, scheduler,
                    extra: dict | None = None, keep: int = 3) -> Path:
    """Write checkpoint ``step`` completely, then point ``latest`` at it; keep the newest ``keep``."""
    root = Path(run_dir) / CHECKPOINTS
    final = root / f"step_{step:08d}"
    tmp = root / f".step_{step:08d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_weights(model, tmp / WEIGHTS, {"step": str(step)})
    state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "torch_rng": torch.get_rng_state(), "extra": extra or {}}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    torch.save(state, tmp / "state.pt")
    with open(tmp / "state.pt", "rb+") as handle:
        os.fsync(handle.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_bytes_atomic(root / LATEST, final.name.encode())
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer=None, scheduler=None) -> dict:
    """Restore weights (and, when given, optimizer, scheduler and RNG states); returns the state."""
    load_weights(unwrap(model), path / WEIGHTS)
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state
