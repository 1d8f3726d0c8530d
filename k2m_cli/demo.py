"""`k2m demo`: the whole pipeline on a fresh synthetic corpus, small enough for a laptop CPU."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from k2m_cli.ui import is_quiet, print_table
from k2m_core.errors import UserError

PROMPTS = ("a person jumps forward", "someone waves with the right hand", "a man walks slowly to the left")


def _plan(out: Path, clips: int, vq_steps: int, t2m_steps: int, seed: int) -> list[list]:
    """Stages of `Step`s; the steps of one stage run side by side."""
    from k2m_cli.pipeline import Step
    from k2m_core.names import prompt_stem

    data, runs, model = out / "corpus" / "dataset.h5", out / "runs", out / "model"
    t2m = ["--data", data, "--tokenizer", model / "vq", "--preset", "cpu", "--encoder", "minilm", "--seed", seed]
    s = lambda *a: [str(x) for x in a]  # noqa: E731 — argument lists of paths and numbers
    motions = [out / "motions" / f"{prompt_stem(p)}_00.npz" for p in PROMPTS]
    return [
        [Step("synth", s("data", "synth", "--out", out / "corpus", "--clips", clips, "--seed", seed, "--preview", 2))],
        [Step("train vq", s("train", "vq", "--data", data, "--out", model / "vq", "--preset", "cpu", "--adapter",
                            "none", "--steps", vq_steps, "--set", "train.lr=0.001", "--seed", seed))],
        [Step("tokenize", s("data", "tokenize", data, "--tokenizer", model / "vq")),
         Step("encode text", s("data", "encode-text", data, "--encoder", "minilm"))],
        [Step("train transformer", s("train", "transformer", "--out", model / "transformer", "--steps", t2m_steps, *t2m), threads=1),
         Step("train residual", s("train", "residual", "--out", model / "residual", "--steps", t2m_steps // 2, *t2m), threads=1),
         Step("train length", s("train", "length", "--out", model / "length", "--steps", t2m_steps // 2, *t2m), threads=1),
         Step("train evaluator", s("eval", "train-evaluator", data, "--out", runs / "evaluator", "--preset", "cpu",
                                   "--steps", t2m_steps, "--seed", seed), threads=1)],
        [Step("gen", s("gen", *PROMPTS, "--model", model, "--frames", 120, "--out", out / "motions",
                       "--format", "npz,bvh,mp4", "--seed", seed)),
         Step("eval recon", s("eval", "recon", model / "vq", "--data", data, "--out", out / "eval" / "recon.json"))],
        [Step("render", s("render", *motions, "--out", out / "motions" / "side_by_side.mp4")),
         Step("eval physics", s("eval", "physics", *motions, "--out", out / "eval" / "physics.json")),
         Step("eval t2m", s("eval", "t2m", model, "--evaluator", runs / "evaluator", "--data", data, "--out",
                            out / "eval" / "t2m", "--repetitions", 3, "--mm-texts", 0))],
    ]


def demo(
    ctx: typer.Context,
    out: Path = typer.Option(Path("k2m-demo"), "--out", help="Folder for everything the demo makes."),
    clips: int = typer.Option(400, "--clips", help="Synthetic clips to train on."),
    vq_steps: int = typer.Option(1000, "--vq-steps", help="Tokenizer training steps."),
    t2m_steps: int = typer.Option(700, "--t2m-steps", help="Masked-transformer steps (residual and length get half)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the corpus and every model."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out folder's demo files."),
) -> None:
    """Run the whole pipeline on a fresh synthetic corpus with the CPU preset: synth, train vq,
    tokenize, train the transformers and the evaluator, gen, render, eval. About 10 minutes
    on 2 CPU cores with the defaults; each step's output is logged under OUT/logs.

    Example: k2m demo --out k2m-demo
    """
    import shutil

    from k2m_cli.pipeline import run_steps

    if clips < 50:
        raise UserError(f"--clips {clips}: the demo needs at least 50 clips to split into train/val/test")
    if vq_steps < 1 or t2m_steps < 2:
        raise UserError("--vq-steps and --t2m-steps must be positive")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise UserError(f"{out} exists and is not empty; pass --force to replace the demo in it, or another --out")
        for name in ("corpus", "model", "runs", "motions", "eval", "logs", "summary.json"):
            target = out / name
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    quiet = is_quiet(ctx)
    echo = (lambda line: None) if quiet else (lambda line: typer.echo(line, err=True))
    stages = _plan(out, clips, vq_steps, t2m_steps, seed)
    total, start = sum(len(stage) for stage in stages), time.perf_counter()
    done = 0
    for stage in stages:
        echo(f"[{done + 1}–{done + len(stage)}/{total}] {', '.join(step.name for step in stage)} "
             f"({(time.perf_counter() - start) / 60:.1f} min so far)")
        run_steps(stage, log_dir=out / "logs", echo=echo)
        done += len(stage)
    minutes = (time.perf_counter() - start) / 60
    summary = _summary(out, stages, minutes)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_table(f"k2m demo: {minutes:.1f} min (commands in {out / 'summary.json'})", ["step", "seconds"],
                [[s.name, f"{s.seconds:.0f}"] for stage in stages for s in stage], quiet)
    for label, where in summary["outputs"].items():
        typer.echo(f"{label:>18}: {where}")
    for label, value in summary["metrics"].items():
        typer.echo(f"{label:>18}: {value}")


def _summary(out: Path, stages, minutes: float) -> dict:
    outputs = {
        "corpus": out / "corpus" / "dataset.h5", "corpus previews": out / "corpus" / "previews",
        "model": out / "model", "evaluator": out / "runs" / "evaluator", "motions": out / "motions",
        "side-by-side video": out / "motions" / "side_by_side.mp4", "t2m report": out / "eval" / "t2m" / "report.md",
        "logs": out / "logs",
    }
    metrics = {}
    recon = out / "eval" / "recon.json"
    if recon.is_file():  # each file exists unless its step failed, which stops the demo earlier
        values = json.loads(recon.read_text())
        metrics["2D error (px)"] = f"{values['px_error_1080p']:.1f} at 1080p"
        if "pa_mpjpe_mm" in values:
            metrics["PA-MPJPE (mm)"] = f"{values['pa_mpjpe_mm']:.0f}"
    physics = out / "eval" / "physics.json"
    if physics.is_file():
        means = json.loads(physics.read_text())["summary"]
        for key in ("skating_ratio", "jitter", "penetration_mm", "float_mm"):
            metrics[key] = f"{means[key]:.3g}"
    return {"minutes": round(minutes, 1), "outputs": {k: str(v) for k, v in outputs.items()}, "metrics": metrics,
            "steps": [{"name": s.name, "seconds": round(s.seconds, 1), "command": s.command}
                      for stage in stages for s in stage]}
