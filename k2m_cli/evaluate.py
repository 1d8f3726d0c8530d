"""`k2m eval …`: measure trained models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from k2m_cli.ui import is_quiet, print_table, progress

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
    from k2m_core.loading import load_tokenizer, resolve_device
    from k2m_core.runs import VQRunConfig, read_run_config

    if split not in ("train", "val", "test"):
        raise UserError(f"--split {split!r}: choose train, val or test")
    dev = resolve_device(device)
    dataset = Dataset(data or read_run_config(run_dir, VQRunConfig).data)
    if len(dataset.splits[split]) == 0:
        raise UserError(f"{dataset.path}: the {split!r} split is empty; choose another --split")
    metrics = reconstruction_metrics(load_tokenizer(run_dir, dev), dataset, split, dev, max_clips=max_clips)
    text = json.dumps(metrics, indent=2)
    if out is not None:
        write_bytes_atomic(out, text.encode())
    print_table(f"reconstruction on {dataset.path.name}:{split}", ["metric", "value"],
                [[k, v] for k, v in metrics.items()], is_quiet(ctx))
    typer.echo(text)


@app.command("train-evaluator")
def train_evaluator(
    ctx: typer.Context,
    dataset: Optional[Path] = typer.Argument(None, help="Dataset file to train on (its train split; val for early stopping)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory to create."),
    preset: str = typer.Option("cpu", "--preset", help="paper (Guo et al.'s sizes) | cpu | tiny."),
    glove: Optional[Path] = typer.Option(None, "--glove", help="GloVe text file (e.g. glove.6B.300d.txt) to initialise the word vectors."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (at most; early stopping may end sooner; with --resume: extend the run to this many)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Global batch size (negatives come from the batch)."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Stop after this many evaluations without a lower validation loss (0: never)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for weights and batches."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda | auto."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="A config.toml to start from."),
    overrides: List[str] = typer.Option([], "--set", help="Override any config key, e.g. --set model.embed_dim=256."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run directory exactly."),
    force: bool = typer.Option(False, "--force", help="Replace an existing run in --out."),
) -> None:
    """Train the text–motion evaluator of the HumanML3D protocol on a dataset's 2D keypoints and captions.

    Guo et al.'s text and motion encoders; their embeddings drive FID, R-precision, MM-Dist, Diversity
    and Multimodality in `k2m eval t2m`.

    Example: k2m eval train-evaluator corpus/dataset.h5 --out runs/evaluator --preset cpu
    """
    import shlex
    import sys

    from k2m_core.eval.evaluator import EvaluatorRunConfig
    from k2m_core.runs import resolve_run_config
    from k2m_core.train.evaluator import default_config, train_evaluator as run

    config = resolve_run_config(
        "k2m eval train-evaluator", EvaluatorRunConfig, lambda: default_config(preset, dataset), resume=resume,
        config_file=config_file, required={"DATASET": dataset, "--out RUN_DIR": out},
        fresh={"DATASET": dataset, "--out": out, "--config": config_file, "--glove": glove,
               "--batch-size": batch_size, "--patience": patience, "--seed": seed},
        settings={"data": str(dataset.resolve()) if dataset else None, "glove": str(glove.resolve()) if glove else None,
                  "train.steps": steps, "train.batch_size": batch_size, "train.seed": seed, "train.device": device,
                  "patience": patience},
        overrides=overrides)
    out = resume or out
    quiet = is_quiet(ctx)
    with progress("train evaluator", config.train.steps, quiet) as advance:
        last = run(config, out, resume=resume is not None, force=force, command=shlex.join(["k2m"] + sys.argv[1:]),
                   progress=advance)
    print_table(f"evaluator run {out}", ["metric", "value"], [[k, v] for k, v in last.items()], quiet)
    typer.echo(str(out))


@app.command("t2m")
def t2m(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Model folder (vq/, transformer/, optionally residual/ and length/)."),
    evaluator: Path = typer.Option(..., "--evaluator", help="Evaluator run directory (from `k2m eval train-evaluator`)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset file (default: the evaluator's)."),
    out: Path = typer.Option(Path("eval_t2m"), "--out", help="Folder for report.json, report.md and the plots."),
    split: str = typer.Option("test", "--split", help="train | val | test."),
    repetitions: int = typer.Option(20, "--repetitions", help="Repetitions of the whole protocol (mean ± 95 % CI)."),
    mm_texts: int = typer.Option(100, "--mm-texts", help="Captions for Multimodality (0: skip it)."),
    mm_generations: int = typer.Option(30, "--mm-generations", help="Motions per caption for Multimodality."),
    seed: int = typer.Option(0, "--seed", help="Seed of every draw: the same seed gives the same report."),
    batch_size: int = typer.Option(64, "--batch-size", help="Prompts per generation call."),
    device: str = typer.Option("auto", "--device", help="cpu | cuda | auto."),
    clip_weights: Optional[str] = typer.Option(None, "--clip-weights", help="CLIP weights, for models trained with CLIP."),
    force: bool = typer.Option(False, "--force", help="Replace a report already in --out."),
) -> None:
    """Benchmark a text-to-motion model against the ground truth at the 2D level (paper Table 3).

    Generates for the split's captions at their true lengths, projects the SMPL output with the
    camera its tokenizer decodes for (f = 5000 px for the paper's, 1920 px once framed for one that
    learned each clip's focal length), and reports FID, R-precision top-1/2/3, MM-Dist, Diversity
    and Multimodality.

    Example: k2m eval t2m runs/model --evaluator runs/evaluator --data corpus/dataset.h5 --out eval/
    """
    from k2m_core import __version__
    from k2m_core.data.dataset import Dataset
    from k2m_core.errors import UserError
    from k2m_core.eval.evaluator import load_evaluator
    from k2m_core.eval.t2m import T2MSettings, evaluate_t2m, generations_per_run, markdown_table, write_report
    from k2m_core.generate import load_model
    from k2m_core.loading import read_t2m_config, resolve_device

    settings = T2MSettings(repetitions=repetitions, split=split, mm_texts=mm_texts, mm_generations=mm_generations,
                           seed=seed, batch_size=batch_size).validate()
    if (out / "report.json").exists() and not force:
        raise UserError(f"{out}: already holds a report; pass --force to replace it or choose another --out")
    dev = resolve_device(device)
    scorer = load_evaluator(evaluator, dev)
    dataset = Dataset(data or scorer.config.data)
    if split not in dataset.splits:
        raise UserError(f"--split {split!r}: choose train, val or test")
    sampler = load_model(model, device=dev, clip_weights=clip_weights)
    trained_on = Path(read_t2m_config(model / "transformer", "transformer").data)
    quiet = is_quiet(ctx)
    total = generations_per_run(len(dataset.captioned(dataset.splits[split])), settings)
    with progress("t2m eval (motions generated)", total, quiet) as advance:
        report, embeddings = evaluate_t2m(sampler, scorer, dataset, settings, progress=advance)
    report.update(model=str(model), evaluator=str(evaluator), data=str(dataset.path), k2m_version=__version__,
                  names={"model": model.resolve().name}, model_trained_on=str(trained_on))
    paths = write_report(report, embeddings, out)
    if not quiet:
        typer.echo(markdown_table(report), err=True)
    typer.echo("\n".join(str(p) for p in paths))


def _motion_inputs(motions: Optional[List[Path]], data: Optional[Path], split: str, body):
    from k2m_core.errors import UserError
    from k2m_core.eval.motions import dataset_motions, load_motions, motion_files

    if data is not None:
        if motions:
            raise UserError("give motion files or --data DATASET (its 3D ground truth), not both")
        return dataset_motions(data, split, body), None
    paths = motion_files(list(motions or []))
    return load_motions(paths, body), len(paths)


def _write_json(out: Optional[Path], result: dict) -> None:
    if out is None:
        return
    from k2m_core.atomic import write_bytes_atomic

    clean = json.loads(json.dumps(result, default=float), parse_constant=lambda c: None)  # NaN → null
    write_bytes_atomic(out, json.dumps(clean, indent=2).encode())


@app.command("critic")
def critic(
    ctx: typer.Context,
    motions: Optional[List[Path]] = typer.Argument(None, help="Motion files (.npz from `k2m gen`, AMASS-style; .bvh) or folders of them."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="MotionCritic weights (motioncritic_pre.pth from the MotionCritic project)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Score this dataset's 3D ground truth instead of files."),
    split: str = typer.Option("test", "--split", help="With --data: train | val | test."),
    windows: str = typer.Option("first", "--windows", help="first: each motion's first 60 frames at 20 fps (the paper) | all: mean over 60-frame windows."),
    body_model: Optional[str] = typer.Option(None, "--body-model", help="Body for BVH inputs and dataset truth: skeleton (default) or a SMPL model file/folder."),
    device: str = typer.Option("auto", "--device", help="cpu | cuda | auto."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write per-motion scores and the summary as JSON here."),
) -> None:
    """Score motions with MotionCritic (higher is better) and summarise as paper Table 2: mean, max, min, std.

    Example: k2m eval critic out/ --checkpoint motioncritic_pre.pth --out critic.json
    """
    import numpy as np
    import torch

    from k2m_core.body import load_body_model
    from k2m_core.eval.critic import critic_windows, load_critic, score_windows, summarise
    from k2m_core.loading import resolve_device

    dev = resolve_device(device)
    model = load_critic(checkpoint, dev)
    body = load_body_model(body_model).to(torch.float64)
    source, total = _motion_inputs(motions, data, split, body)
    names, windows_per_motion, all_windows = [], [], []
    for name, motion in source:
        cut = critic_windows(motion.poses, motion.trans, motion.fps, windows)
        names.append(name)
        windows_per_motion.append(len(cut))
        all_windows.extend(cut)
    scores = score_windows(model, all_windows, dev)
    bounds = np.cumsum([0] + windows_per_motion)
    per_motion = [float(scores[lo:hi].mean()) for lo, hi in zip(bounds[:-1], bounds[1:])]
    result = {"checkpoint": str(checkpoint), "windows": windows, "summary": summarise(per_motion),
              "motions": [{"name": n, "score": s, "windows": w} for n, s, w in zip(names, per_motion, windows_per_motion)]}
    _write_json(out, result)
    print_table("MotionCritic (higher is better)", ["statistic", "value"],
                [[k, v] for k, v in result["summary"].items()], is_quiet(ctx))
    typer.echo(json.dumps(result["summary"]))


@app.command("physics")
def physics(
    ctx: typer.Context,
    motions: Optional[List[Path]] = typer.Argument(None, help="Motion files (.npz from `k2m gen`, AMASS-style; .bvh) or folders of them."),
    data: Optional[Path] = typer.Option(None, "--data", help="Score this dataset's 3D ground truth instead of files."),
    split: str = typer.Option("test", "--split", help="With --data: train | val | test."),
    body_model: Optional[str] = typer.Option(None, "--body-model", help="skeleton (default: joints) or a SMPL model file/folder (mesh: lowest vertex for ground contact)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write per-motion numbers and the means as JSON here."),
) -> None:
    """Physical plausibility without learned weights: foot skating, jitter, ground penetration and
    float, joint-limit violations (definitions: k2m_core/eval/physics.py).

    Example: k2m eval physics out/ --out physics.json
    """
    import torch

    from k2m_core.body import load_body_model
    from k2m_core.eval.physics import METRICS, physics_metrics, summarise

    body = load_body_model(body_model).to(torch.float64)
    source, _ = _motion_inputs(motions, data, split, body)
    per_motion = [{"name": name, **physics_metrics(motion, body)} for name, motion in source]
    result = {"summary": summarise(per_motion), "motions": per_motion}
    _write_json(out, result)
    print_table("physics (mean over motions)", ["metric", "value"],
                [[k, result["summary"][k]] for k in ("motions",) + METRICS], is_quiet(ctx))
    typer.echo(json.dumps(result["summary"]))


@app.command("text-use")
def text_use(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model folder (vq/, transformer/, …) or a bundled model's name, as `k2m gen --model`."),
    data: Path = typer.Option(..., "--data", help="Dataset file with captions (its token cache is used when it has one for the model's tokenizer)."),
    swaps: List[str] = typer.Option(["left:right"], "--swap", help="Word pair A:B to exchange in the captions; repeatable."),
    split: str = typer.Option("test", "--split", help="train | val | test."),
    max_clips: Optional[int] = typer.Option(None, "--max-clips", help="Score only the first N selected clips."),
    prompts: List[str] = typer.Option([], "--prompt", help="Prompt naming left or right for the direction count; repeatable (default: 'a person walks to the left' and '… right')."),
    samples: int = typer.Option(10, "--samples", help="Motions generated per prompt for the direction count."),
    seconds: float = typer.Option(4.0, "--seconds", help="Length of each generated motion (2–10 s)."),
    generate: bool = typer.Option(True, "--generate/--no-generate", help="Count directions of generated motions (needs generation)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the caption derangement and of generation."),
    device: str = typer.Option("auto", "--device", help="cpu | cuda | auto."),
    clip_weights: Optional[str] = typer.Option(None, "--clip-weights", help="CLIP weights, for models trained with CLIP."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the numbers (and per-clip values) as JSON here."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
) -> None:
    """Does the model use a word? Cross-entropy of clips' tokens, every token masked, under the own
    caption, the caption with the --swap words exchanged, and another clip's caption; and how many
    motions generated for "walks to the left/right" move towards the named side of the body.

    Example: k2m eval text-use k2m-mini --data corpus/dataset.h5 --swap left:right --out text_use.json
    """
    from k2m_core.data.dataset import SPLITS, Dataset
    from k2m_core.errors import UserError
    from k2m_core.eval.text_use import (MIN_MOVE_M, base_tokens, caption_use, direction_counts, direction_prompts,
                                        parse_swaps, select_clips, swapped)
    from k2m_core.generate import FPS, MAX_FRAMES, MIN_FRAMES, load_model, resolve_model
    from k2m_core.loading import resolve_device

    pairs = parse_swaps(swaps)
    if split not in SPLITS:
        raise UserError(f"--split {split!r}: choose train, val or test")
    if max_clips is not None and max_clips < 2:
        raise UserError(f"--max-clips {max_clips}: give at least 2 (another clip's caption needs a second clip)")
    frames = round(seconds * FPS)
    if generate and samples < 1:
        raise UserError(f"--samples {samples}: give at least 1 motion per prompt (or --no-generate)")
    if generate and not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise UserError(f"--seconds {seconds}: motions are {MIN_FRAMES / FPS:g}–{MAX_FRAMES / FPS:g} s long")
    if out is not None and out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to replace it or choose another --out")
    targets = direction_prompts(pairs, prompts) if generate else []
    model_dir = resolve_model(model, "MODEL")
    dataset = Dataset(data)
    if not dataset.all_captions:
        raise UserError(f"{dataset.path}: has no captions; give captions to `k2m preprocess --captions` "
                        "or use a captioned dataset")
    clips, captions = select_clips(dataset, split, pairs, max_clips)
    dev = resolve_device(device)
    sampler = load_model(model_dir, device=dev, clip_weights=clip_weights)
    tokens, facings, source = base_tokens(sampler, dataset, clips, dev)
    use = caption_use(sampler, captions, tokens, facings, pairs, seed)
    per_clip = use.pop("per_clip")
    directions = direction_counts(sampler, targets, samples, frames, seed) if targets else []
    result = {"model": str(model_dir), "data": str(dataset.path), "split": split, "swaps": [list(p) for p in pairs],
              "clips": len(clips), "tokens": source, "seed": seed, **use, "directions": directions,
              "per_clip": [{"id": dataset.ids[c], "caption": text, "swapped_caption": swapped(text, pairs),
                            **{k: v[i] for k, v in per_clip.items()}}
                           for i, (c, text) in enumerate(zip(clips.tolist(), captions))]}
    _write_json(out, result)
    quiet = is_quiet(ctx)
    names = {"own": "own caption", "swapped": "swapped caption", "other": "another clip's caption",
             "swapped_minus_own": "gap swapped − own", "other_minus_own": "gap other − own"}
    rows = [[names[k], v["mean"], v["se"]] for part in ("cross_entropy", "gap") for k, v in use[part].items()]
    print_table(f"cross-entropy, every token masked (nats/token), {len(clips)} clips of {dataset.path.name}:{split}",
                ["caption", "mean", "s.e."], rows, quiet)
    if directions:
        print_table(f"generated motions moving ≥ {MIN_MOVE_M} m to a side of the body", ["prompt", "towards", "away",
                    "of", "mean move (m)"], [[d["prompt"], d["towards"], d["away"], d["samples"], d["mean_move_m"]]
                                             for d in directions], quiet)
    typer.echo(json.dumps({k: result[k] for k in ("clips", "tokens", "cross_entropy", "gap", "directions")}))
