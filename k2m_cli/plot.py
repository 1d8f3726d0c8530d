"""`k2m plot`: training curves of a run as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def plot(
    run_dir: Path = typer.Argument(..., help="A run directory with metrics.jsonl."),
    out: Optional[Path] = typer.Option(None, "--out", help="PNG to write (default RUN_DIR/curves.png)."),
) -> None:
    """Plot every logged loss term, the learning rate and the evaluation metrics against the step.

    Example: k2m plot runs/vq
    """
    from k2m_core.train.plot import plot_run

    typer.echo(str(plot_run(run_dir, out)))
