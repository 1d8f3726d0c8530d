"""`k2m data …`: make, inspect and combine dataset files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import typer

from k2m_core.errors import UserError

app = typer.Typer(help="Make, inspect and combine dataset files.", no_args_is_help=True)


@app.command("info")
def info(
    dataset: Path = typer.Argument(..., show_default=False, help="Dataset file (.h5)."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
    min_conf: float = typer.Option(0.5, "--min-conf", help="Keypoints below this confidence are left out of "
                                                           "the velocities."),
) -> None:
    """Statistics of a dataset file: clips, hours, splits, captions and vocabulary, and the mean
    pixel velocity of every keypoint (paper Fig. 6).

    \b
    Example:
      k2m data info data/web.h5
      k2m data info data/web.h5 --json > stats.json
    """
    from k2m_core.preprocess.info import dataset_info

    stats = dataset_info(dataset, min_conf=min_conf)
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    _print_info(stats)


def _print_info(stats: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    overview = Table(title=stats["file"], show_header=False)
    overview.add_column(style="bold")
    overview.add_column()
    lengths = stats["clip_seconds"]
    captions = stats["captions"]
    rows = [
        ("clips", f"{stats['clips']:,} from {stats['videos']:,} videos"),
        ("frames", f"{stats['frames']:,} at {stats['fps']:g} fps = {stats['hours']:.3f} h"),
        ("clip length", f"{lengths['min']:.1f}–{lengths['max']:.1f} s (mean {lengths['mean']:.1f}, "
                        f"median {lengths['median']:.1f})"),
        ("splits", " · ".join(f"{name} {s['clips']:,} clips / {s['videos']:,} videos"
                              for name, s in stats["splits"].items())),
        ("captions", f"{captions['total']:,}; per clip " + ", ".join(f"{k}: {v:,}" for k, v in
                                                                    captions["per_clip"].items())),
        ("words", f"mean {captions['words_mean']:.1f}, max {captions['words_max']} per caption; vocabulary "
                  f"{captions['vocabulary']:,}"),
        ("top words", ", ".join(captions["top_words"])),
        ("frame sizes", ", ".join(f"{k} ({v:,} clips)" for k, v in stats["frame_sizes"].items())),
        ("text features", ", ".join(stats["text_features"]) or "none cached"),
        ("ground truth", ", ".join(stats["ground_truth"]) or "none"),
        ("created by", stats["creation_command"] or "?"),
    ]
    for name, value in rows:
        overview.add_row(name, value)
    console.print(overview)
    velocity = Table(title=f"mean keypoint velocity, px/s (confidence ≥ {stats['velocity_min_conf']:g}; paper Fig. 6)")
    velocity.add_column("keypoint")
    velocity.add_column("px/s", justify="right")
    velocity.add_column("")
    values = [v for v in stats["keypoint_velocity_px_s"].values() if v is not None]
    top = max(values, default=0.0) or 1.0
    for name, value in stats["keypoint_velocity_px_s"].items():
        bar = "█" * int(round(20 * value / top)) if value is not None else ""
        velocity.add_row(name, "—" if value is None else f"{value:,.1f}", bar)
    console.print(velocity)


@app.command("validate")
def validate(
    dataset: Path = typer.Argument(..., show_default=False, help="Dataset file (.h5)."),
    max_errors: int = typer.Option(20, "--max-errors", help="Stop listing after this many violations."),
) -> None:
    """Check every invariant of the dataset format (docs/design.md#dataset); exit 2 listing the first
    violations if any.

    \b
    Example:
      k2m data validate data/web.h5
    """
    from k2m_core.preprocess.validate import validate_dataset

    if not dataset.is_file():
        raise UserError(f"{dataset}: no such dataset file")
    violations = validate_dataset(dataset, max_errors=max(1, max_errors))
    if violations:
        for line in violations:
            typer.echo(f"  {line}", err=True)
        raise UserError(f"{dataset}: {len(violations)}{'+' if len(violations) >= max_errors else ''} "
                        "violation(s) of the dataset format (listed above); re-create the file with "
                        "`k2m preprocess` or `k2m data merge`")
    typer.echo(f"{dataset}: ok")


@app.command("merge")
def merge(
    ctx: typer.Context,
    datasets: List[Path] = typer.Argument(..., show_default=False, help="Dataset files to combine."),
    out: Path = typer.Option(..., "--out", "-o", help="Merged dataset file to create."),
    seed: int = typer.Option(None, "--seed", help="Split seed (default: the first input's)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
) -> None:
    """Combine dataset files, e.g. the shards of `k2m preprocess --shard i/n`, into one; splits
    are drawn again by source video.

    \b
    Example:
      k2m data merge part0.h5 part1.h5 part2.h5 --out web.h5
    """
    from k2m_cli.preprocess import command_line
    from k2m_core.preprocess.merge import merge_datasets

    result = merge_datasets(datasets, out, seed=seed, force=force, command=command_line(ctx))
    for note in result["notes"]:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"{out}: {result['clips']:,} clips, {result['frames']:,} frames from {result['inputs']} files "
               f"(split seed {result['seed']})")


@app.command("mirror")
def mirror(
    ctx: typer.Context,
    dataset: Path = typer.Argument(..., show_default=False, help="Dataset file to mirror."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset file to create: every clip and its mirrored twin."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
) -> None:
    """Add a left–right mirrored copy of every clip, with "left" and "right" (and clockwise and
    counterclockwise) swapped in its captions (HumanML3D's augmentation for direction words).
    Twins stay in their original's split.

    \b
    Example:
      k2m data mirror corpus/dataset.h5 --out corpus/mirrored.h5
    """
    from k2m_cli.preprocess import command_line
    from k2m_core.data.mirror import mirror_dataset

    result = mirror_dataset(dataset, out, force=force, command=command_line(ctx))
    for note in result["notes"]:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"{out}: {result['clips']:,} clips ({result['originals']:,} and their mirrored twins; "
               f"{result['captions_changed']:,} with direction words swapped)")


@app.command("front")
def front(
    ctx: typer.Context,
    dataset: Path = typer.Argument(..., show_default=False, help="Dataset file to see again from the front."),
    tokenizer: Path = typer.Option(..., "--tokenizer", help="Tokenizer run directory whose 3D turns the clips.",
                                   show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset file to create.", show_default=False),
    batch_size: int = typer.Option(32, "--batch-size", help="Clips decoded at once."),
    device: str = typer.Option("auto", "--device", help="cpu | cuda | auto."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
) -> None:
    """Every clip seen again from the front: the tokenizer's 3D of it, turned to face the camera at
    its first frame, projected again. Text models trained on its tokens generate facing the camera,
    so "left" means one thing in every clip (HumanML3D canonicalises its motions the same way);
    `k2m gen --view` then turns the motion. Captions, splits and 3D ground truth (turned) are kept.

    \b
    Example:
      k2m data front corpus/dataset.h5 --tokenizer runs/vq --out corpus/front.h5
      k2m data tokenize corpus/front.h5 --tokenizer runs/vq
    """
    from k2m_cli.preprocess import command_line
    from k2m_cli.ui import is_quiet, progress
    from k2m_core.data.dataset import Dataset
    from k2m_core.data.front import front_dataset
    from k2m_core.loading import load_tokenizer, resolve_device
    from k2m_core.t2m.tokens import tokenizer_fingerprint

    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if out.exists() and not force:  # before the tokenizer loads
        raise UserError(f"{out} already exists; pass --force to overwrite it")
    clips = len(Dataset(dataset))
    model = load_tokenizer(tokenizer, resolve_device(device))
    with progress("turning clips to the front", clips, is_quiet(ctx)) as advance:
        result = front_dataset(dataset, model, tokenizer_fingerprint(model), out, force=force,
                               command=command_line(ctx), batch_size=batch_size, progress=advance)
    for note in result["notes"]:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"{out}: {result['clips']:,} clips seen from the front ({result['turned_over_45deg']:,} turned "
               "more than 45°)")
