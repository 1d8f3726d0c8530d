"""`k2m train …`: the trainers. Each writes a run directory and can be resumed exactly."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from k2m_cli.ui import is_quiet, print_table, progress

app = typer.Typer(help="Train the tokenizer and the text-to-motion models.", no_args_is_help=True)


@app.command("vq")
def train_vq(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset file (from `k2m preprocess` or `k2m data synth`)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory to create."),
    preset: str = typer.Option("cpu", "--preset", help="paper | cpu | tiny: model and schedule sizes."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="dstformer (default) | none (plain conv encoder, paper Table 5b)."),
    body_model: Optional[str] = typer.Option(None, "--body-model", help="skeleton (default), smpl, or a SMPL model file/folder."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (with --resume: extend the run to this many)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Global batch size."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for weights and batches."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda | auto."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Batch-loading worker processes."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="A config.toml to start from."),
    overrides: List[str] = typer.Option([], "--set", help="Override any config key, e.g. --set model.width=256."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run directory exactly."),
    force: bool = typer.Option(False, "--force", help="Replace an existing run in --out."),
) -> None:
    """Train the MotionVQ-Adapter tokenizer (2D keypoints → motion tokens → SMPL).

    Example: k2m train vq --data corpus/dataset.h5 --out runs/vq --preset cpu
    """
    from k2m_core.runs import VQRunConfig, resolve_run_config
    from k2m_core.train.vq import default_config, train_vq as run

    config = resolve_run_config(
        "k2m train vq", VQRunConfig, lambda: default_config(preset, data), resume=resume, config_file=config_file,
        required={"--data DATASET": data, "--out RUN_DIR": out},
        fresh={"--data": data, "--out": out, "--config": config_file, "--adapter": adapter,
               "--body-model": body_model, "--batch-size": batch_size, "--seed": seed},
        settings={"data": str(data.resolve()) if data else None, "model.adapter": adapter,
                  "model.body_model": body_model, "train.steps": steps, "train.batch_size": batch_size,
                  "train.seed": seed, "train.device": device, "train.workers": workers},
        overrides=overrides)
    out = resume or out
    quiet = is_quiet(ctx)
    with progress("train vq", config.train.steps, quiet) as advance:
        last = run(config, out, resume=resume is not None, force=force,
                   command=shlex.join(["k2m"] + sys.argv[1:]), progress=advance)
    print_table(f"tokenizer run {out}", ["metric", "value"], [[k, v] for k, v in last.items()], quiet)
    typer.echo(str(out))
