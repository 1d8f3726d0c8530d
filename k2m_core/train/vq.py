"""Train the MotionVQ-Adapter tokenizer (`k2m train vq`) and load a trained one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from k2m_core.config import from_toml
from k2m_core.data.dataset import Dataset
from k2m_core.errors import UserError
from k2m_core.tokenizer.config import TokenizerConfig, preset as model_preset
from k2m_core.train.loop import TrainConfig
from k2m_core.train.rundir import CONFIG

# Step counts and batch sizes that go with each model preset.
TRAIN_PRESETS = {
    "paper": TrainConfig(steps=100_000, batch_size=256, lr=2e-4, warmup_steps=2000, eval_every=2000,
                         save_every=2000),
    "cpu": TrainConfig(steps=3000, batch_size=64, lr=4e-4, warmup_steps=200, eval_every=500, save_every=500),
    "tiny": TrainConfig(steps=40, batch_size=8, lr=1e-3, warmup_steps=5, log_every=5, eval_every=20,
                        save_every=20),
}


@dataclass
class VQRunConfig:
    data: str = ""  # dataset file (absolute path)
    preset: str = "cpu"
    mirror: float = 0.5  # chance that a training window is mirrored left↔right
    eval_clips: int = 64  # validation clips scored at each evaluation
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def default_config(preset: str, data: Path, **model_overrides) -> VQRunConfig:
    if preset not in TRAIN_PRESETS:
        raise UserError(f"--preset {preset!r}: choose one of {', '.join(TRAIN_PRESETS)}")
    return VQRunConfig(data=str(Path(data).resolve()), preset=preset,
                       model=model_preset(preset, **model_overrides), train=replace(TRAIN_PRESETS[preset]))


def build_model(config: TokenizerConfig):
    from k2m_core.body import load_body_model
    from k2m_core.tokenizer.model import MotionVQAdapter

    return MotionVQAdapter(config.validate(), load_body_model(config.body_model))


def train_vq(config: VQRunConfig, out: Path, *, resume: bool = False, force: bool = False, command: str = "",
             progress: Callable[..., None] | None = None) -> dict:
    """Train per ``config`` into run directory ``out`` (or continue it with ``resume``)."""
    from k2m_core.eval.recon import reconstruction_metrics
    from k2m_core.train.distributed import init_distributed, resolve_device, shutdown
    from k2m_core.train.loop import fit
    from k2m_core.train.rundir import create_run_dir
    from k2m_core.train.windows import WindowSampler

    dist, device = init_distributed(resolve_device(config.train.device))
    try:
        dataset = Dataset(config.data)
        if dist.is_main and not resume:
            create_run_dir(out, config, force=force, command=command)
        if dist.enabled:
            torch.distributed.barrier()
        torch.manual_seed(config.train.seed)  # identical initial weights on every rank
        model = build_model(config.model)
        batches = WindowSampler(dataset, "train", config.model.window, config.train.batch_size,
                                config.train.seed, rank=dist.rank, world_size=dist.world_size, mirror=config.mirror)
        split = "val" if len(dataset.splits["val"]) else "train"

        def evaluate(model, step):
            return reconstruction_metrics(model, dataset, split, device, max_clips=config.eval_clips)

        return fit(model, batches, config.train, Path(out), dist=dist, device=device, resume=resume,
                   evaluate=evaluate, progress=progress)
    finally:
        shutdown(dist)


def load_run_config(run_dir: Path) -> VQRunConfig:
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise UserError(f"{run_dir}: not a tokenizer run directory (no {CONFIG}); train one with `k2m train vq`")
    return from_toml(VQRunConfig, path)


def load_tokenizer(run_dir: Path, device: torch.device | str = "cpu"):
    """The trained tokenizer of ``run_dir`` (latest checkpoint), in eval mode."""
    from k2m_core.train.checkpoint import WEIGHTS, latest_checkpoint, load_weights

    config = load_run_config(run_dir)
    model = build_model(config.model)
    load_weights(model, latest_checkpoint(run_dir) / WEIGHTS)
    return model.to(device).eval()
