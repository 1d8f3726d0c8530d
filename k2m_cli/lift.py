"""`k2m lift`: 2D keypoints → SMPL motion files through a trained tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from k2m_cli.ui import is_quiet, parse_size, print_table
from k2m_core.errors import UserError


def lift(
    ctx: typer.Context,
    inputs: List[Path] = typer.Argument(None, help="Keypoint files or folders, in any format `k2m preprocess` reads."),
    tokenizer: str = typer.Option("k2m-mini", "--tokenizer", help="Tokenizer run directory (from `k2m train vq`), "
                                  "a model folder holding vq/, or a bundled model's name."),
    out: Path = typer.Option(..., "--out", help="Folder for the motion files."),
    formats: str = typer.Option("npz,bvh", "--format", help="Comma-separated: npz, bvh, mp4, gif."),
    data: Optional[Path] = typer.Option(None, "--data", help="Lift clips of a dataset file instead (with --clip)."),
    clips: List[str] = typer.Option(None, "--clip", help="Clip id in --data (repeatable)."),
    fmt: str = typer.Option("auto", "--input-format", help="auto, coco, openpose, mmpose, npz or jsonl."),
    size: Optional[str] = typer.Option(None, "--size", help="Frame size WxH when the files do not say."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Input frame rate when the files do not say (else 30)."),
    focal: Optional[float] = typer.Option(None, "--focal", help="Camera focal length in pixels when the files do "
                                          "not say (default 1.2 × the frame's long side)."),
    fov: Optional[float] = typer.Option(None, "--fov", help="Or the camera's field of view across the long side, degrees."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Turn 2D keypoints into SMPL motion with a tokenizer (encode → tokens → decode): monocular
    motion capture, and the way to see what 3D a tokenizer learned.

    One output frame per input frame; frames where nobody was detected are filled from their
    neighbours and listed in NAME.json beside the motion. Long inputs are decoded in overlapping
    windows.

    \b
    Example:
      k2m lift run_coco.json --size 1920x1080 --fps 30 --tokenizer k2m-mini --out lifted/ --format npz,bvh,mp4
      k2m lift --data corpus/dataset.h5 --clip synth_000123 --tokenizer runs/vq --out lifted/
    """
    from k2m_core.atomic import make_folder
    from k2m_core.generate import FORMATS
    from k2m_core.keypoints import check_focal_options
    from k2m_core.lift import dataset_tracks, estimator_tracks, lift_track, resolve_tokenizer, write_lifted
    from k2m_core.loading import load_tokenizer, resolve_device
    from k2m_core.names import unique_stems

    wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not wanted or set(wanted) - set(FORMATS):
        raise UserError(f"--format {formats!r}: choose from {', '.join(FORMATS)}")
    if bool(inputs) == (data is not None):
        raise UserError("give keypoint files to lift, or --data DATA.h5 with --clip ID (not both)")
    if data is not None and not clips:
        raise UserError(f"--data {data}: say which clips to lift with --clip ID (see `k2m data info {data}`)")
    if clips and data is None:
        raise UserError("--clip needs --data DATA.h5")
    if fps is not None and not 1 <= fps <= 1000:
        raise UserError(f"--fps {fps}: give a frame rate between 1 and 1000")
    check_focal_options(focal, fov)
    run_dir = resolve_tokenizer(tokenizer)
    if data is not None:
        tracks = dataset_tracks(data, clips)
    else:
        tracks = estimator_tracks(inputs, fmt, parse_size(size), fps, focal, fov)
    dev = resolve_device(device)
    model = load_tokenizer(run_dir, dev)
    plans = [(track, out / stem) for track, stem in zip(tracks, unique_stems([t.name for t in tracks], "motion"))]
    existing = [str(stem.with_suffix(f".{kind}")) for _, stem in plans for kind in (*wanted, "json")
                if stem.with_suffix(f".{kind}").exists()]
    if existing and not force:
        raise UserError(f"{existing[0]} exists ({len(existing)} output file(s) would be overwritten); "
                        "pass --force or choose another --out")
    make_folder(out)  # before the work: a folder that cannot be made fails now
    records = []
    for track, stem in plans:
        motion = lift_track(model, track, device=dev)
        records.append(write_lifted(motion, track, stem, wanted, model.body, run_dir))
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    print_table(f"{len(records)} lifted → {out}", ["input", "frames", "filled", "files"],
                [[r["input"], r["frames"], len(r["filled_frames"]), " ".join(Path(f).name for f in r["files"])]
                 for r in records], is_quiet(ctx))
    for record in records:
        for name in record["files"]:
            typer.echo(name)
