"""Text → SMPL motion files: the engine behind `k2m gen`.

A model folder holds the run directories of one trained K2M: ``vq/`` (tokenizer),
``transformer/`` (masked transformer), and optionally ``residual/`` and ``length/``. ``--model``
is such a folder or the name of a model bundled in ``k2m_core/models`` (default: k2m-mini).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from k2m_core.errors import UserError
from k2m_core.t2m.config import SamplingOverrides

BUNDLED = Path(__file__).resolve().parent / "models"  # models shipped inside the package
DEFAULT_MODEL = "k2m-mini"
FPS = 30.0  # generated motion runs at the dataset rate (docs/design.md#conventions)
MIN_FRAMES, MAX_FRAMES = 60, 300  # 2–10 s, the clip lengths models are trained on
FORMATS = ("npz", "bvh", "mp4", "gif")  # motion files, then rendered previews


def bundled_models() -> list[str]:
    return sorted(p.name for p in BUNDLED.iterdir() if (p / "transformer").is_dir()) if BUNDLED.is_dir() else []


def resolve_model(model: str | Path | None, option: str = "--model") -> Path:
    """A model folder from ``--model`` (or the command's ``option``): a path, or the name of a
    bundled model (default k2m-mini)."""
    name = str(model) if model is not None else DEFAULT_MODEL
    path = Path(name)
    if path.is_dir():
        return path
    if (BUNDLED / name).is_dir():
        return BUNDLED / name
    known = ", ".join(bundled_models()) or "none in this installation"
    raise UserError(f"{option} {name}: no such model folder or bundled model (bundled: {known}); train one "
                    "with `k2m train …` (see README) and pass its folder")


def load_model(model_dir: Path, *, device: torch.device | str = "cpu", clip_weights: str | None = None,
               sampling: SamplingOverrides | None = None):
    """A `Sampler` from a model folder (see the module docstring), sampling with the models' own
    settings changed by ``sampling``."""
    from k2m_core.loading import load_sampler

    model_dir = Path(model_dir)
    if not (model_dir / "transformer").is_dir() or not (model_dir / "vq").is_dir():
        raise UserError(f"{model_dir}: not a k2m model folder; it needs the run directories vq/ and "
                        "transformer/ (and optionally residual/, length/) from `k2m train …`")
    optional = {name: model_dir / name if (model_dir / name).is_dir() else None for name in ("residual", "length")}
    return load_sampler(model_dir / "transformer", optional["residual"], optional["length"],
                        tokenizer_dir=model_dir / "vq", clip_weights=clip_weights, device=device, sampling=sampling)


def view_yaw(view: str) -> float:
    """``--view`` → the subject's yaw in radians: a side the camera sees (front, left, right, back,
    as the synthetic rig names them) or degrees, positive turning the subject to its left."""
    import math

    from k2m_core.synth.camera_rig import VIEWPOINTS

    if view in VIEWPOINTS:
        return math.radians(VIEWPOINTS[view][1])
    try:
        degrees = float(view)
    except ValueError:
        degrees = math.nan
    if not math.isfinite(degrees):
        raise UserError(f"--view {view!r}: give {', '.join(VIEWPOINTS)} or an angle in degrees, e.g. --view 45")
    return math.radians(degrees)


def output_stems(prompts: list[str], num_samples: int) -> list[str]:
    """File stems of the motions of ``prompts`` (each ``num_samples`` times): `prompt_stem` and a
    two-digit count that runs on when a prompt is given twice."""
    from k2m_core.names import prompt_stem

    counts: dict[str, int] = {}
    stems = []
    for prompt in prompts:
        stem = prompt_stem(prompt)
        for _ in range(num_samples):
            stems.append(f"{stem}_{counts.get(stem, 0):02d}")
            counts[stem] = counts.get(stem, 0) + 1
    return stems


def generate_files(sampler, prompts: list[str], frames: list[int | None], out_dir: Path, *,
                   num_samples: int = 1, seed: int = 0, formats: tuple[str, ...] = ("npz",),
                   fps: float = FPS, body=None, force: bool = False, yaw: float | None = None) -> list[dict]:
    """Generate ``num_samples`` motions per prompt and write them in ``formats`` under ``out_dir``.

    ``frames[i]`` is prompt i's length (None: sampled from the length estimator). Files are written
    at ``fps`` (the model's 30 fps resampled) and named by `output_stems`; existing files are only
    replaced with ``force``. ``body`` (default: the tokenizer's) poses the motion for joints,
    ground contact and previews; a body with a mesh renders previews as a mesh. ``yaw`` (radians)
    is the view of a model that takes one (`Sampler.takes_view`, `view_yaw`; None: facing the camera).
    Returns one record per motion: prompt, sample, frames, seed, files."""
    from k2m_core.atomic import make_folder
    from k2m_core.export.motion_file import WorldMotion, save_motion
    from k2m_core.export.world import camera_to_world

    for number, prompt in enumerate(prompts, 1):
        if not prompt.strip():
            raise UserError(f"prompt {number} is empty; describe a motion, e.g. \"a man jumps\"")
    for n in frames:
        if n is not None and not MIN_FRAMES <= n <= MAX_FRAMES:
            raise UserError(f"--frames {n}: motions are {MIN_FRAMES}–{MAX_FRAMES} frames (2–10 s at 30 fps)")
    if any(n is None for n in frames) and sampler.length is None:
        raise UserError("no --frames given and the model has no length estimator (length/); pass --frames N")
    stems = [out_dir / stem for stem in output_stems(prompts, num_samples)]
    existing = [path for stem in stems for kind in formats if (path := stem.with_suffix(f".{kind}")).exists()]
    if existing and not force:
        raise UserError(f"{existing[0]} exists ({len(existing)} of the files to write do); pass --force to overwrite "
                        "them, or choose another --out")
    make_folder(out_dir)
    batch_prompts = [p for p in prompts for _ in range(num_samples)]
    batch_frames = [n for n in frames for _ in range(num_samples)]
    if all(n is not None for n in batch_frames):
        generated = sampler.generate(batch_prompts, batch_frames, seed=seed, yaw=yaw)
    else:  # the estimator draws every length; given lengths then replace their draws
        drawn = sampler.generate(batch_prompts, None, seed=seed, decode=False).frames.tolist()
        lengths = [n if n is not None else int(np.clip(d, MIN_FRAMES, MAX_FRAMES)) for n, d in zip(batch_frames, drawn)]
        generated = sampler.generate(batch_prompts, lengths, seed=seed, yaw=yaw)
    # A float64 CPU copy: Module.to() works in place and the sampler's own body must stay as it is.
    body = copy.deepcopy(body if body is not None else sampler.tokenizer.body).to("cpu", torch.float64)
    motion = generated.motion
    records = []
    for i, prompt in enumerate(batch_prompts):
        count = int(generated.frames[i])
        betas = motion.betas[i].double().cpu().numpy()
        poses, transl, joints = camera_to_world(motion.poses()[i, :count].double().cpu().numpy(),
                                                motion.transl[i, :count].double().cpu().numpy(), betas, body, up="z")
        world = WorldMotion(poses, transl, betas, FPS, prompt, joints).resampled(fps)
        stem = stems[i]
        files = []
        for kind in formats:
            path = stem.with_suffix(f".{kind}")
            if kind in ("npz", "bvh"):
                save_motion(world, path, body, seed=seed)
            else:  # previews: the renderer is imported only when one is asked for
                from k2m_core.render.draw import write_video
                from k2m_core.render.sources import render_motions

                video, rate = render_motions([world], body, captions=[prompt], fps=fps)
                write_video(path, video, rate)
            files.append(str(path))
        records.append({"prompt": prompt, "sample": i % num_samples, "frames": len(world), "seed": seed,
                        "fps": fps, "files": files})
    return records
