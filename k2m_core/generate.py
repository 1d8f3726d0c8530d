"""Text → SMPL motion files: the engine behind `k2m gen`.

A model folder holds the run directories of one trained K2M: ``vq/`` (tokenizer),
``transformer/`` (masked transformer), and optionally ``residual/`` and ``length/``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from k2m_core.errors import UserError

FPS = 30.0  # generated motion runs at the dataset rate (SPEC §2)
MIN_FRAMES, MAX_FRAMES = 60, 300  # 2–10 s, the clip lengths models are trained on
FORMATS = ("npz", "bvh")


def load_model(model_dir: Path, *, device: torch.device | str = "cpu", clip_weights: str | None = None):
    """A `Sampler` from a model folder (see the module docstring)."""
    from k2m_core.train.t2m import load_sampler

    model_dir = Path(model_dir)
    if not (model_dir / "transformer").is_dir() or not (model_dir / "vq").is_dir():
        raise UserError(f"{model_dir}: not a k2m model folder; it needs the run directories vq/ and "
                        "transformer/ (and optionally residual/, length/) from `k2m train …`")
    optional = {name: model_dir / name if (model_dir / name).is_dir() else None for name in ("residual", "length")}
    return load_sampler(model_dir / "transformer", optional["residual"], optional["length"],
                        tokenizer_dir=model_dir / "vq", clip_weights=clip_weights, device=device)


def set_sampling(sampler, *, steps=None, cfg=None, temperature=None, top_k=None) -> None:
    """Override the sampling settings stored with the models (None keeps a setting)."""
    given = {"steps": steps, "cfg_scale": cfg, "temperature": temperature, "top_k": top_k}
    sampler.masked_settings = replace(sampler.masked_settings, **{k: v for k, v in given.items() if v is not None})


def slug(prompt: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")[:48] or "motion"


def generate_files(sampler, prompts: list[str], frames: list[int | None], out_dir: Path, *,
                   num_samples: int = 1, seed: int = 0, formats: tuple[str, ...] = ("npz",)) -> list[dict]:
    """Generate ``num_samples`` motions per prompt and write them in ``formats`` under ``out_dir``.

    ``frames[i]`` is prompt i's length (None: sampled from the length estimator). Returns one
    record per motion: prompt, sample, frames, seed, files."""
    from k2m_core.export.amass import write_amass_npz
    from k2m_core.export.bvh import write_bvh
    from k2m_core.export.world import camera_to_world

    for n in frames:
        if n is not None and not MIN_FRAMES <= n <= MAX_FRAMES:
            raise UserError(f"--frames {n}: motions are {MIN_FRAMES}–{MAX_FRAMES} frames (2–10 s at 30 fps)")
    if any(n is None for n in frames) and sampler.length is None:
        raise UserError("no --frames given and the model has no length estimator (length/); pass --frames N")
    batch_prompts = [p for p in prompts for _ in range(num_samples)]
    batch_frames = [n for n in frames for _ in range(num_samples)]
    if all(n is not None for n in batch_frames):
        generated = sampler.generate(batch_prompts, batch_frames, seed=seed)
    else:  # the estimator draws every length; given lengths then replace their draws
        drawn = sampler.generate(batch_prompts, None, seed=seed, decode=False).frames.tolist()
        lengths = [n if n is not None else int(np.clip(d, MIN_FRAMES, MAX_FRAMES)) for n, d in zip(batch_frames, drawn)]
        generated = sampler.generate(batch_prompts, lengths, seed=seed)
    body = sampler.tokenizer.body.to(torch.float64)
    motion = generated.motion
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for i, prompt in enumerate(batch_prompts):
        count = int(generated.frames[i])
        poses = motion.poses()[i, :count].double().cpu().numpy()
        transl = motion.transl[i, :count].double().cpu().numpy()
        betas = motion.betas[i].double().cpu().numpy()
        stem = out_dir / f"{slug(prompt)}_{i % num_samples:02d}"
        files = []
        if "npz" in formats:
            p, t, j = camera_to_world(poses, transl, betas, body, up="z")
            write_amass_npz(stem.with_suffix(".npz"), p, t, betas, j, FPS, text=prompt, seed=seed)
            files.append(str(stem.with_suffix(".npz")))
        if "bvh" in formats:
            p, t, _ = camera_to_world(poses, transl, betas, body, up="y")
            rest = body.rest_joints(torch.from_numpy(betas)[None])[0].numpy()
            write_bvh(stem.with_suffix(".bvh"), p, t, rest, FPS)
            files.append(str(stem.with_suffix(".bvh")))
        records.append({"prompt": prompt, "sample": i % num_samples, "frames": count, "seed": seed, "files": files})
    return records
