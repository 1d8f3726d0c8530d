"""`k2m data from-mocap`: real motion capture as 2D keypoints with 3D ground truth."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from k2m_cli.ui import is_quiet, parse_size, print_table, progress
from k2m_core.errors import UserError


def from_mocap(
    ctx: typer.Context,
    motions: List[Path] = typer.Argument(..., show_default=False,
                                         help="Motion files or folders (searched recursively): .bvh, AMASS .npz, "
                                              "AIST++ .pkl."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset file to create (.h5)."),
    views: int = typer.Option(1, "--views", help="Cameras per clip (each its own viewpoint, lens and distance)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the cameras, the noise and the train/val/test split."),
    clean: bool = typer.Option(False, "--clean", help="Exact projections with confidence 1: no estimator noise, "
                                                      "no dropouts."),
    humanml3d: Optional[Path] = typer.Option(None, "--humanml3d", help="HumanML3D folder (index.csv, texts/): crop "
                                                                        "each AMASS file to its segments and caption "
                                                                        "them."),
    captions: Optional[Path] = typer.Option(None, "--captions", help="CSV/JSONL of captions by file stem (or clip "
                                                                      "id); without it or --humanml3d clips have none."),
    joint_map: Optional[Path] = typer.Option(None, "--joint-map", help="TOML mapping SMPL joint names to the BVH "
                                                                        "joints of a skeleton k2m does not know."),
    units: Optional[str] = typer.Option(None, "--units", help="BVH length unit: m, cm, mm, inch or cmu "
                                                               "(default: detected from the body's height)."),
    body_model: Optional[str] = typer.Option(None, "--body-model", help="For SMPL files: skeleton (default), smpl, "
                                                                         "or a SMPL model file/folder."),
    focal: Optional[float] = typer.Option(None, "--focal", help="One focal length in pixels for every camera "
                                                                "(default: a field of view of 40-75°)."),
    size: str = typer.Option("", "--size", help="Frame size WxH for every camera (default: a mix of common sizes)."),
    strict: bool = typer.Option(False, "--strict", help="Any unusable file: exit 2, write nothing."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
    report: Optional[Path] = typer.Option(None, "--report", help="Where to write the JSON report "
                                                                  "(default: <out>.report.json)."),
) -> None:
    """Render motion capture into a dataset file: COCO-17 keypoints seen by virtual cameras (the
    synthetic corpus's, viewpoints in the shares of paper Table 7), estimator-like noise, 30 fps
    clips of 2-10 s, splits by source file, and camera-frame SMPL joints as 3D ground truth for
    `k2m eval recon`.

    Reads BVH (CMU cgspeed 3dsMax- and Daz-friendly names, Mixamo, the SMPL BVH of `k2m export`,
    any other with --joint-map), AMASS .npz (SMPL, SMPL+H) and AIST++ .pkl (only NumPy arrays are
    accepted from a pickle). Unusable files are listed in the report and skipped, unless --strict.

    \b
    Example:
      k2m data from-mocap cmu_bvh/ --out data/cmu.h5 --views 4 --seed 0
      k2m data from-mocap amass/ --humanml3d HumanML3D/ --out data/hml.h5
    """
    from k2m_core.mocap.bvh import UNITS

    if units is not None and units not in UNITS:
        raise UserError(f"--units {units!r}: choose one of {', '.join(UNITS)}")
    if focal is not None and not focal > 0:
        raise UserError(f"--focal must be a positive number of pixels, got {focal}")
    if views < 1:
        raise UserError(f"--views must be at least 1, got {views}")
    import torch

    from k2m_core.body import load_body_model
    from k2m_core.mocap.corpus import MocapConfig, write_mocap_dataset

    image_size = parse_size(size)
    config = MocapConfig(seed=seed, views=views, clean=clean, units=units, focal=focal,
                         image_size=tuple(round(v) for v in image_size) if image_size else None)
    body = load_body_model(body_model).to(torch.float64)
    quiet = is_quiet(ctx)
    with progress("from-mocap", None, quiet) as advance:
        summary = write_mocap_dataset(motions, out, config, body, humanml3d=humanml3d, captions=captions,
                                      joint_map=joint_map, strict=strict, force=force, report_path=report,
                                      command=shlex.join(["k2m"] + sys.argv[1:]),
                                      on_file=lambda done, total, running: advance())
    rows = [["files read", f"{summary['read']} of {summary['files']}"],
            ["clips", f"{summary['clips']:,} from {summary['motions']} motions ({views} view(s) each)"],
            ["frames", f"{summary['frames']:,} at 30 fps = {summary['hours']:.3f} h"],
            ["too short", f"{summary['too_short']['stretches']} stretches"]]
    print_table(f"k2m data from-mocap → {out}", ["", ""], rows, quiet)
    if summary["problems"]:
        print_table("skipped files", ["file", "reason", "message"],
                    [[p["file"], p["reason"], p["message"]] for p in summary["problems"]], quiet)
    for path in summary["not_in_index"][:5]:
        typer.echo(f"note: {path} has no segment in the HumanML3D index; skipped", err=True)
    typer.echo(f"{out}: {summary['clips']} clips")
