"""Train the MotionVQ-Adapter tokenizer (`k2m train vq`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from k2m_core.errors import UserError
from k2m_core.runs import TrainConfig, VQRunConfig
from k2m_core.tokenizer.config import preset as model_preset

# Step counts and batch sizes that go with each model preset.
TRAIN_PRESETS = {
    "paper": TrainConfig(steps=100_000, batch_size=256, lr=2e-4, warmup_steps=2000, eval_every=2000,
                         save_every=2000),
    "cpu": TrainConfig(steps=3000, batch_size=64, lr=4e-4, warmup_steps=200, eval_every=500, save_every=500),
    "tiny": TrainConfig(steps=40, batch_size=8, lr=1e-3, warmup_steps=5, log_every=5, eval_every=20,
                        save_every=20),
}


def default_config(preset: str, data: Path, **model_overrides) -> VQRunConfig:
    if preset not in TRAIN_PRESETS:
        raise UserError(f"--preset {preset!r}: choose one of {', '.join(TRAIN_PRESETS)}")
    return VQRunConfig(data=str(Path(data).resolve()), preset=preset,
                       model=model_preset(preset, **model_overrides), train=replace(TRAIN_PRESETS[preset]))


def train_vq(config: VQRunConfig, out: Path, *, resume: bool = False, force: bool = False, command: str = "",
             progress: Callable[..., None] | None = None) -> dict:
    """Train per ``config`` into run directory ``out`` (or continue it with ``resume``)."""
    from k2m_core.eval.recon import reconstruction_metrics
    from k2m_core.loading import build_tokenizer
    from k2m_core.train.session import training_session
    from k2m_core.train.windows import WindowSampler

    with training_session(config, out, resume=resume, force=force, command=command, progress=progress) as session:
        dataset, dist = session.dataset, session.dist
        session.start(config)
        model = build_tokenizer(config.model)
        batches = WindowSampler(dataset, "train", config.model.window, config.train.batch_size,
                                config.train.seed, rank=dist.rank, world_size=dist.world_size, mirror=config.mirror)
        split = "val" if len(dataset.splits["val"]) else "train"

        def evaluate(model, step):
            return reconstruction_metrics(model, dataset, split, session.device, max_clips=config.eval_clips)

        return session.fit(model, batches, evaluate=evaluate)
