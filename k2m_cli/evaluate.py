"""`k2m eval …`: measure trained models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from k2m_cli.ui import is_quiet, print_table

app = typer.Typer(help="Evaluate trained models.", no_args_is_help=True)


@app.command("recon")
def recon(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="Tokenizer run directory (from `k2m train vq`)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset file (default: the one it was trained on)."),
    split: str = typer.Option("test", "--split", help="train | val | test."),
    max_clips: Optional[int] = typer.Option(None, "--max-clips", help="Score only the first N clips of the split."),
    device: str = typer.Option("auto", "--device", help="cpu | cuda | auto."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the metrics as JSON here."),
) -> None:
    """Reconstruction quality of a tokenizer: 2D error, code usage, and 3D error where truth exists.

    Example: k2m eval recon runs/vq --data corpus/dataset.h5 --split test
    """
    from k2m_core.atomic import write_bytes_atomic
    from k2m_core.data.dataset import Dataset
    from k2m_core.errors import UserError
    from k2m_core.eval.recon import reconstruction_metrics
    from k2m_core.train.distributed import resolve_device
    from k2m_core.train.vq import load_run_config, load_tokenizer

    if split not in ("train", "val", "test"):
        raise UserError(f"--split {split!r}: choose train, val or test")
    dev = resolve_device(device)
    dataset = Dataset(data or load_run_config(run_dir).data)
    if len(dataset.splits[split]) == 0:
        raise UserError(f"{dataset.path}: the {split!r} split is empty; choose another --split")
    metrics = reconstruction_metrics(load_tokenizer(run_dir, dev), dataset, split, dev, max_clips=max_clips)
    text = json.dumps(metrics, indent=2)
    if out is not None:
        write_bytes_atomic(out, text.encode())
    print_table(f"reconstruction on {dataset.path.name}:{split}", ["metric", "value"],
                [[k, v] for k, v in metrics.items()], is_quiet(ctx))
    typer.echo(text)
