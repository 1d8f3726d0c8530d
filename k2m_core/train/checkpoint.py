"""Checkpoints: weights as safetensors, training state beside them, written atomically.

``checkpoints/step_00001000/{model.safetensors, state.pt}`` plus ``checkpoints/latest``
naming the newest complete one (a name inside ``checkpoints/``, never a path elsewhere). A
checkpoint directory is built under a temporary name and renamed when complete. Loading never
runs pickled code: safetensors for weights, ``torch.load(weights_only=True)`` for optimizer,
scheduler and RNG state. Batches are a pure function of (seed, step), so no data-loader state
needs saving.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from k2m_core.atomic import temp_path_for, write_bytes_atomic
from k2m_core.errors import UserError
from k2m_core.runs import CHECKPOINTS, LATEST, WEIGHTS, checkpoint_names, load_weights

STATE = "state.pt"


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
    tmp = temp_path_for(path)
    save_file(tensors, str(tmp), metadata=metadata or {})
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, optimizer, scheduler,
                    extra: dict | None = None, keep: int = 3) -> Path:
    """Write checkpoint ``step`` completely, then point ``latest`` at it; keep the newest ``keep``."""
    root = Path(run_dir) / CHECKPOINTS
    final = root / f"step_{step:08d}"
    tmp = temp_path_for(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_weights(model, tmp / WEIGHTS, {"step": str(step)})
    state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "torch_rng": torch.get_rng_state(), "extra": extra or {}}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    torch.save(state, tmp / STATE)
    with open(tmp / STATE, "rb+") as handle:
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
    file = path / STATE
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # refused: it holds objects other than tensors and plain values
        raise UserError(f"{file}: not a k2m checkpoint (it holds Python objects k2m never writes, and loading "
                        "them could run code); do not resume from it") from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        earlier = [name for name in checkpoint_names(path.parent.parent) if name < path.name]
        what = (f"write the name of an earlier one ({', '.join(earlier)}) into checkpoints/{LATEST} to resume from "
                "there" if earlier else "no earlier checkpoint is kept: start the run again with --force")
        raise UserError(f"{file}: cannot read the training state, the checkpoint is damaged ({type(exc).__name__}: "
                        f"{str(exc)[:80]}); {what}") from None
    try:
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        int(state["step"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"{file}: not a k2m checkpoint for this run ({type(exc).__name__}: {str(exc)[:120]})") from None
    return state
