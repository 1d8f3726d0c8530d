"""Text-to-motion commands: `k2m train transformer|residual|length`, `k2m data encode-text`,
`k2m data tokenize`. Registered on the `train` and `data` sub-apps by `k2m_cli.main`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from k2m_cli.ui import is_quiet, print_table, progress
from k2m_core.errors import UserError

_CLIP_WEIGHTS_HELP = "CLIP ViT-B/32 weights file (else $K2M_CLIP_WEIGHTS, else open_clip's download cache)."


def _train(ctx: typer.Context, kind: str, *, data, out, tokenizer, preset, encoder, clip_weights, steps, batch_size,
           seed, device, workers, config_file, overrides, resume, force) -> None:
    from k2m_core.runs import T2M_CONFIGS, resolve_run_config
    from k2m_core.train.t2m import default_config, train_t2m

    settings = {"data": str(data.resolve()) if data else None, "train.steps": steps, "train.batch_size": batch_size,
                "train.seed": seed, "train.device": device, "train.workers": workers}
    if tokenizer is not None:  # another tokenizer: its fingerprint is read again
        settings.update({"tokenizer": str(tokenizer.resolve()), "tokens.tokenizer": ""})
    if encoder is not None:  # another text encoder: identity (and vocabulary) are resolved again
        settings.update({"text.name": encoder, "text.identity": "", "text.vocab": ()})
    config = resolve_run_config(
        f"k2m train {kind}", T2M_CONFIGS[kind],
        lambda: default_config(kind, preset, data, tokenizer, encoder or "clip"), resume=resume,
        config_file=config_file,
        required={"--data DATASET": data, "--tokenizer RUN_DIR": tokenizer or config_file, "--out RUN_DIR": out},
        fresh={"--data": data, "--out": out, "--tokenizer": tokenizer, "--config": config_file, "--encoder": encoder,
               "--batch-size": batch_size, "--seed": seed},
        settings=settings, overrides=overrides)
    out = resume or out
    quiet = is_quiet(ctx)
    with progress(f"train {kind}", config.train.steps, quiet) as advance:
        last = train_t2m(config, out, resume=resume is not None, force=force, clip_weights=clip_weights,
                         command=shlex.join(["k2m"] + sys.argv[1:]), progress=advance)
    print_table(f"{kind} run {out}", ["metric", "value"], [[k, v] for k, v in last.items()], quiet)
    typer.echo(str(out))


_DATA = typer.Option(None, "--data", help="Dataset file with a token cache (`k2m data tokenize`).")
_OUT = typer.Option(None, "--out", help="Run directory to create.")
_TOKENIZER = typer.Option(None, "--tokenizer", help="Tokenizer run directory (from `k2m train vq`).")
_PRESET = typer.Option("cpu", "--preset", help="paper | cpu | tiny: model and schedule sizes.")
_ENCODER = typer.Option(None, "--encoder", help="Text encoder: clip (default; features from `k2m data encode-text`) "
                                                "| minilm (offline, features from `k2m data encode-text`) | words (learned with the model) "
                                                "| clip-random.")
_CLIP_WEIGHTS = typer.Option(None, "--clip-weights", help=_CLIP_WEIGHTS_HELP)
_STEPS = typer.Option(None, "--steps", help="Training steps (with --resume: extend the run to this many).")
_BATCH = typer.Option(None, "--batch-size", help="Global batch size.")
_SEED = typer.Option(None, "--seed", help="Seed for weights and batches.")
_DEVICE = typer.Option(None, "--device", help="cpu | cuda | auto.")
_WORKERS = typer.Option(None, "--workers", help="Batch-loading worker processes.")
_CONFIG = typer.Option(None, "--config", help="A config.toml to start from.")
_SET = typer.Option([], "--set", help="Override any config key, e.g. --set model.layers=4.")
_RESUME = typer.Option(None, "--resume", help="Continue this run directory exactly.")
_FORCE = typer.Option(False, "--force", help="Replace an existing run in --out.")


def _trainer(kind: str, summary: str, out_dir: str):
    """The `k2m train KIND` command: one signature for the three text-to-motion trainers."""

    def command(
        ctx: typer.Context, data: Optional[Path] = _DATA, out: Optional[Path] = _OUT,
        tokenizer: Optional[Path] = _TOKENIZER, preset: str = _PRESET, encoder: Optional[str] = _ENCODER,
        clip_weights: Optional[str] = _CLIP_WEIGHTS,
        steps: Optional[int] = _STEPS, batch_size: Optional[int] = _BATCH, seed: Optional[int] = _SEED,
        device: Optional[str] = _DEVICE, workers: Optional[int] = _WORKERS, config_file: Optional[Path] = _CONFIG,
        overrides: List[str] = _SET, resume: Optional[Path] = _RESUME, force: bool = _FORCE,
    ) -> None:
        _train(ctx, kind, data=data, out=out, tokenizer=tokenizer, preset=preset, encoder=encoder,
               clip_weights=clip_weights, steps=steps, batch_size=batch_size, seed=seed, device=device,
               workers=workers, config_file=config_file, overrides=overrides, resume=resume, force=force)

    command.__name__ = f"train_{kind}"
    command.__doc__ = f"""{summary}

    Example: k2m train {kind} --data corpus/dataset.h5 --tokenizer runs/vq --out runs/{out_dir} --preset cpu
    """
    return command


train_transformer = _trainer("transformer", "Train the masked transformer: text → base-layer motion tokens (paper §3.4).",
                             "t2m")
train_residual = _trainer("residual", "Train the residual transformer: token layers 1…5 from the layers below and the "
                          "text.", "res")
train_length = _trainer("length", "Train the length estimator: text → distribution over motion lengths (used when no "
                        "--frames).", "len")


def encode_text(
    ctx: typer.Context,
    dataset: Path = typer.Argument(..., help="Dataset file; the features are stored in it."),
    encoder: str = typer.Option("clip", "--encoder", help="clip (CLIP ViT-B/32, the paper's) | minilm (all-MiniLM-L6-v2, offline) | clip-random (tests)."),
    clip_weights: Optional[str] = typer.Option(None, "--clip-weights", help=_CLIP_WEIGHTS_HELP),
    batch_size: int = typer.Option(256, "--batch-size", help="Captions per encoder call."),
    device: str = typer.Option("auto", "--device", help="cpu | cuda | auto."),
) -> None:
    """Encode every caption once and cache the features (float16) in the dataset file.

    Training then never runs the text encoder. Re-running replaces that encoder's cache.

    Example: k2m data encode-text corpus/dataset.h5 --encoder clip --clip-weights ViT-B-32.safetensors
    """
    from k2m_core.data.dataset import Dataset
    from k2m_core.loading import resolve_device
    from k2m_core.t2m.data import encode_captions
    from k2m_core.text import load_text_encoder

    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    total = len(Dataset(dataset).all_captions)
    text_encoder = load_text_encoder(encoder, clip_weights).to(resolve_device(device))
    with progress("encoding captions", total, is_quiet(ctx)) as advance:
        identity = encode_captions(dataset, text_encoder, batch_size=batch_size, progress=advance)
    typer.echo(f"{dataset}: {total} caption features from {identity}")


def tokenize(
    ctx: typer.Context,
    dataset: Path = typer.Argument(..., help="Dataset file; the tokens are stored in it."),
    tokenizer: Path = typer.Option(..., "--tokenizer", help="Tokenizer run directory (from `k2m train vq`)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Clips per tokenizer call."),
    device: str = typer.Option("auto", "--device", help="cpu | cuda | auto."),
) -> None:
    """Encode every clip into motion tokens (all quantiser layers) and cache them in the dataset file.

    The cache is keyed by the tokenizer's fingerprint: the transformers refuse tokens made by any
    other tokenizer.

    Example: k2m data tokenize corpus/dataset.h5 --tokenizer runs/vq
    """
    from k2m_core.data.dataset import Dataset
    from k2m_core.loading import load_tokenizer, resolve_device
    from k2m_core.t2m.data import token_facings, tokenize_clips, write_token_cache
    from k2m_core.t2m.tokens import token_spec

    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    data = Dataset(dataset)
    model = load_tokenizer(tokenizer, resolve_device(device))
    spec = token_spec(model)
    with progress("tokenizing clips", len(data), is_quiet(ctx)) as advance:
        codes = tokenize_clips(data, model, device=resolve_device(device), batch_size=batch_size, progress=advance)
    data.close()
    facings = token_facings(model, codes, device=resolve_device(device), batch_size=batch_size)
    write_token_cache(dataset, codes, spec, tokenizer_dir=str(tokenizer.resolve()), facings=facings)
    typer.echo(f"{dataset}: {sum(len(c) for c in codes)} tokens × {spec.num_quantizers} layers from tokenizer "
               f"{spec.tokenizer}")
