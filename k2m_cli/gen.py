"""`k2m gen`: text → SMPL motion files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from k2m_cli.ui import is_quiet, print_table
from k2m_core.errors import UserError


def _read_prompts(path: Path) -> tuple[list[str], list[int | None]]:
    """One prompt per line, optionally ``#FRAMES`` at the end; blank lines and ``//`` comments skipped."""
    from k2m_core.generate import MAX_FRAMES, MIN_FRAMES

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read prompts ({exc})") from None
    prompts, frames = [], []
    for number, line in enumerate(lines, 1):
        text, mark, count = line.strip().partition("#")
        if not line.strip() or line.strip().startswith("//"):
            continue
        if not text.strip():
            raise UserError(f"{path}:{number}: no prompt before '#{count}'; write e.g. 'a man jumps #150'")
        if mark and not (count.strip().isdigit() and MIN_FRAMES <= int(count) <= MAX_FRAMES):
            raise UserError(f"{path}:{number}: '#{count}' is not a frame count of {MIN_FRAMES}–{MAX_FRAMES} "
                            "(2–10 s at 30 fps); write e.g. 'a man jumps #150'")
        prompts.append(text.strip())
        frames.append(int(count) if mark else None)
    if not prompts:
        raise UserError(f"{path}: no prompts in it")
    return prompts, frames


def gen(
    ctx: typer.Context,
    prompts: List[str] = typer.Argument(None, help="Text prompts."),
    prompts_file: Optional[Path] = typer.Option(None, "--prompts", help="File with one prompt per line (optional '#FRAMES')."),
    model: Optional[str] = typer.Option(None, "--model", help="Model folder (runs vq/, transformer/, + residual/, length/) or a bundled model's name (default: k2m-mini)."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Frames per motion at 30 fps (60–300); default: the length estimator."),
    num_samples: int = typer.Option(1, "--num-samples", help="Motions per prompt."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same motions."),
    cfg: Optional[float] = typer.Option(None, "--cfg", help="Classifier-free guidance scale of the base token layer (default: the model's own)."),
    residual_cfg: Optional[float] = typer.Option(None, "--residual-cfg", help="Guidance scale of the residual layers, which --cfg leaves alone (default: the model's own)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Unmasking steps of the base layer (default: the model's own)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature of every layer, 0 = greedy (default: the model's own)."),
    topk: Optional[float] = typer.Option(None, "--topk", help="Top-k threshold of every layer: 0.9 keeps the top 10 % of logits (default: the model's own)."),
    view: Optional[str] = typer.Option(None, "--view", help="Side of the body the camera sees: front, left, right, back or degrees (models that take a view: trained on a `k2m data front` dataset, a view-conditioned transformer, or body-frame tokens; default: front)."),
    out: Path = typer.Option(Path("out"), "--out", help="Folder for the motion files."),
    formats: str = typer.Option("npz,bvh", "--format", help="Comma-separated: npz, bvh, mp4, gif (videos render the motion)."),
    fps: float = typer.Option(30.0, "--fps", help="Frame rate of the written files (the model makes 30 fps; others are resampled)."),
    body_model: Optional[str] = typer.Option(None, "--body-model", help="Body for joints and previews: skeleton, or a SMPL model file/folder (mesh previews); default: the model's."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    clip_weights: Optional[str] = typer.Option(None, "--clip-weights", help="CLIP weights, for models trained with CLIP."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
    force: bool = typer.Option(False, "--force", help="Overwrite motion files that already exist in --out."),
) -> None:
    """Generate SMPL motions from text: AMASS-style .npz (z-up), .bvh (y-up, cm), .mp4/.gif previews.

    Example: k2m gen "a man jumps" --frames 150 --out out/ --format npz,mp4
    """
    from k2m_core.generate import FORMATS, generate_files, load_model, resolve_model, view_yaw
    from k2m_core.loading import resolve_device
    from k2m_core.t2m.config import SamplingOverrides

    wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not wanted or set(wanted) - set(FORMATS):
        raise UserError(f"--format {formats!r}: choose from {', '.join(FORMATS)}")
    if not 1 <= fps <= 240:
        raise UserError(f"--fps {fps}: give 1–240 frames per second")
    if num_samples < 1:
        raise UserError(f"--num-samples must be at least 1, got {num_samples}")
    sampling = SamplingOverrides(steps=steps, cfg=cfg, residual_cfg=residual_cfg, temperature=temperature,
                                 top_k=topk).validate()
    texts, lengths = list(prompts or []), [frames] * len(prompts or [])
    if prompts_file is not None:
        more, more_frames = _read_prompts(prompts_file)
        texts += more
        lengths += [n if n is not None else frames for n in more_frames]
    if not texts:
        raise UserError('give a prompt, e.g. k2m gen "a man jumps" --model DIR, or --prompts FILE')
    yaw = None if view is None else view_yaw(view)
    body = None
    if body_model is not None:
        from k2m_core.body import load_body_model

        body = load_body_model(body_model)
    sampler = load_model(resolve_model(model), device=resolve_device(device), clip_weights=clip_weights,
                         sampling=sampling)
    if yaw is not None and not sampler.takes_view:
        raise UserError(f"--view {view}: this model's tokens are in the camera frame and its transformer is not "
                        "conditioned on the view, so each motion's view comes with its tokens; --view needs text models "
                        "trained on a `k2m data front` dataset, a transformer trained with model.view_condition = true, "
                        "or a tokenizer with tokens = \"body\"")
    records = generate_files(sampler, texts, lengths, out, num_samples=num_samples, seed=seed, formats=wanted,
                             fps=fps, body=body, force=force, yaw=yaw)
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    print_table(f"{len(records)} motions → {out}", ["prompt", "sample", "frames", "files"],
                [[r["prompt"], r["sample"], r["frames"], " ".join(Path(f).name for f in r["files"])] for r in records],
                is_quiet(ctx))
    for record in records:
        for name in record["files"]:
            typer.echo(name)
