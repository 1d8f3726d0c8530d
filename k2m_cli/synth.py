"""`k2m data synth`: a synthetic corpus of procedural SMPL motions seen as 2D keypoints."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from k2m_cli.ui import is_quiet, parse_size, print_table, progress
from k2m_core.errors import UserError


def synth(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Folder to create (dataset.h5, captions.jsonl, clips.jsonl, …)."),
    clips: int = typer.Option(200, "--clips", help="Number of clips."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same corpus."),
    families: str = typer.Option("", "--families", help="Comma-separated action families (default: all)."),
    preview: int = typer.Option(0, "--preview", help="Write GIF previews of the first N clips."),
    formats: str = typer.Option("", "--formats",
                                help="Also write the keypoints as pose estimators do: any of coco,openpose,jsonl,npz."),
    size: str = typer.Option("", "--size", help="Frame size WxH for every clip (default: a mix of common sizes)."),
    focal: Optional[float] = typer.Option(None, "--focal", help="Focal length in pixels for every clip (5000: the "
                                                                "paper's camera, as corpora were made before "
                                                                "realistic cameras); default: a field of view "
                                                                "of 40-75° at 2.5-8 m."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing corpus in --out."),
) -> None:
    """Generate a synthetic corpus with 3D ground truth.

    Example: k2m data synth --out corpus --clips 2000 --seed 0 --preview 4

    Example (pose-estimator files for `k2m preprocess`): k2m data synth --out c --clips 20 --formats openpose,coco --size 1920x1080
    """
    if clips < 1:
        raise UserError(f"--clips must be at least 1, got {clips}")
    if (out / "dataset.h5").exists() and not force:
        raise UserError(f"{out / 'dataset.h5'} already exists; pass --force to overwrite it or choose another --out")
    from k2m_core.synth.corpus import SynthConfig, write_corpus
    from k2m_core.synth.motions import FAMILIES

    chosen = tuple(f.strip() for f in families.split(",") if f.strip()) or None
    unknown = sorted(set(chosen or ()) - set(FAMILIES))
    if unknown:
        raise UserError(f"--families: unknown {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    from k2m_core.synth.corpus import ESTIMATOR_FORMATS

    wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
    if set(wanted) - set(ESTIMATOR_FORMATS):
        raise UserError(f"--formats: unknown {', '.join(sorted(set(wanted) - set(ESTIMATOR_FORMATS)))}; "
                        f"choose from {', '.join(ESTIMATOR_FORMATS)}")
    image_size = parse_size(size)
    if focal is not None and not focal > 0:
        raise UserError(f"--focal must be a positive number of pixels, got {focal}")
    config = SynthConfig(seed=seed, families=chosen, focal=focal,
                         image_size=tuple(round(v) for v in image_size) if image_size else None)
    quiet = is_quiet(ctx)
    with progress("synthesising", clips, quiet) as advance:
        summary = write_corpus(out, clips, config, preview=preview, formats=wanted, on_clip=lambda clip: advance(),
                               creation_command=shlex.join(["k2m"] + sys.argv[1:]))
    print_table(f"{summary['clips']} clips, {summary['frames']} frames, {summary['hours']:.2f} h → {out}",
                ["family", "clips"], [[k, v] for k, v in summary["families"].items()], quiet)
    typer.echo(str(out / "dataset.h5"))
