"""The text-to-motion benchmark at the 2D level (`k2m eval t2m`; paper §5.2, Table 3, A.3).

Per repetition (20 by default), with draws seeded by (seed, repetition):

1. each clip of the split gets one of its captions at random; the evaluator embeds the captions;
2. ground truth: each clip's keypoints are embedded twice, each time a random crop to a multiple of
   4 frames (Guo et al.'s loader): the first pass is the reference distribution for FID, the
   second the "ground truth" row — so its FID measures only crop noise (the paper's 0.002);
3. the model generates one motion per caption at the clip's true length (at most the models'
   10 s); the SMPL motion, in the camera frame the tokenizer decodes to (1920×1080, its
   `generation_focal`), is projected to COCO-17 pixels with that camera (eq. 3), keypoints outside the image or
   behind the camera get confidence 0, and the clip goes through the same evaluator features as the
   dataset's keypoints (a model with body-frame tokens decodes each motion in a view drawn as the
   synthetic corpus draws them);
4. FID, R-precision top-1/2/3 (pools of 32), MM-Dist and Diversity for both rows; Multimodality
   for the model from ``mm_generations`` motions for each of ``mm_texts`` random captions.

The summary is mean ± 1.96·std/√repetitions per metric (`k2m_core.eval.metrics`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from k2m_core.camera import project
from k2m_core.errors import UserError
from k2m_core.eval import metrics
from k2m_core.eval.evaluator import Evaluator, unit_crop
from k2m_core.keypoints import NUM_JOINTS, NUM_ROWS

GT_ROW = "ground truth"
COLUMNS = (  # key, heading, direction
    ("fid", "FID", "↓"), ("top1", "Top-1", "↑"), ("top2", "Top-2", "↑"), ("top3", "Top-3", "↑"),
    ("mm_dist", "MM-Dist", "↓"), ("diversity", "Diversity", "→"), ("multimodality", "MModality", "↑"))


@dataclass
class T2MSettings:
    repetitions: int = 20
    split: str = "test"
    mm_texts: int = 100  # captions for Multimodality (0: skip it)
    mm_generations: int = 30  # motions per caption for Multimodality
    seed: int = 0
    batch_size: int = 64  # prompts per sampler call

    def validate(self) -> "T2MSettings":
        if self.repetitions < 1:
            raise UserError(f"--repetitions must be at least 1, got {self.repetitions}")
        if self.mm_texts < 0 or (self.mm_texts and self.mm_generations < 2):
            raise UserError("--mm-texts must be ≥ 0 and --mm-generations ≥ 2 (Multimodality compares pairs)")
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {self.batch_size}")
        return self


def project_to_clips(body, motion, frames, size: tuple[float, float], focal: float) -> list[np.ndarray]:
    """Camera-frame SMPL (`SMPLMotion`, ``(B, F, …)``) → ``(frames_i, 18, 3)`` keypoint clips as a
    camera of ``focal`` pixels at image ``size`` (W, H) sees them — the camera the tokenizer decoded
    for (`MotionVQAdapter.generation_focal`: the paper's 5000 px, or 1920 for models that learned
    with each clip's own focal length): pixels, confidence 1 where the keypoint is in front of the
    camera and inside the image, else 0 (with x = y = 0, as datasets store it)."""
    width, height = size
    batch, count = motion.transl.shape[:2]
    with torch.no_grad():
        posed = body(motion.rotmats.flatten(0, 1).float(), motion.betas.float().repeat_interleave(count, dim=0),
                     motion.transl.flatten(0, 1).float())
        keypoints3d = posed.keypoints.unflatten(0, (batch, count))  # (B, F, 17, 3)
        pixels, in_front = project(keypoints3d, width, height, focal)
        inside = in_front & (pixels[..., 0] >= 0) & (pixels[..., 0] < width) & (pixels[..., 1] >= 0) \
            & (pixels[..., 1] < height)
    clips = np.zeros((batch, count, NUM_ROWS, 3), dtype=np.float32)
    clips[:, :, :NUM_JOINTS, :2] = torch.where(inside[..., None], pixels, 0.0).cpu().numpy()
    clips[:, :, :NUM_JOINTS, 2] = inside.cpu().numpy()
    clips[:, :, NUM_JOINTS] = (width, height, 1.0)
    return [clips[i, :int(n)] for i, n in enumerate(frames)]


def generate_clips(sampler, prompts: list[str], frames: np.ndarray, seed: int, batch_size: int,
                   progress: Callable[..., None] | None = None) -> list[np.ndarray]:
    """One generated motion per prompt, projected to 2D keypoint clips. Models that take a view
    (body-frame tokens, a view-conditioned transformer) generate facing the camera unless told
    one, so each motion gets a view drawn as the corpus draws them (front, sides, back:
    `camera_rig.sample_yaw`), as the ground truth has."""
    from k2m_core.synth.camera_rig import sample_yaw
    from k2m_core.t2m.sampler import CANONICAL_SIZE

    clips: list[np.ndarray] = []
    body = sampler.tokenizer.body
    rng = np.random.default_rng(seed)
    yaws = np.array([sample_yaw(rng)[1] for _ in prompts]) if sampler.takes_view else None
    for chunk, lo in enumerate(range(0, len(prompts), batch_size)):
        yaw = None if yaws is None else yaws[lo:lo + batch_size]
        generated = sampler.generate(prompts[lo:lo + batch_size], [int(n) for n in frames[lo:lo + batch_size]],
                                     seed=seed + chunk, size=CANONICAL_SIZE, yaw=yaw)
        clips.extend(project_to_clips(body, generated.motion, generated.frames.tolist(), CANONICAL_SIZE,
                                      sampler.tokenizer.generation_focal))
        if progress is not None:
            progress(len(generated.frames))
    return clips


def evaluate_t2m(sampler, evaluator: Evaluator, dataset, settings: T2MSettings,
                 progress: Callable[..., None] | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Run the protocol; returns the report (see `write_report`) and the last repetition's
    embeddings (``text``, ``ground_truth``, ``generated``) for plots."""
    settings.validate()
    if settings.split not in dataset.splits:
        raise UserError(f"--split {settings.split!r}: choose train, val or test")
    clips = dataset.captioned(dataset.splits[settings.split])  # the protocol needs captions: others take no part
    if len(clips) < 2:
        raise UserError(f"{dataset.path}: the {settings.split!r} split has {len(clips)} clip(s) with captions; FID "
                        "and R-precision need at least 2 (32 for the paper's pools) — use a bigger dataset or --split")
    captions = [dataset.captions(int(c)) for c in clips]
    gt_features = [evaluator.features(dataset.keypoints(int(c))) for c in clips]
    lengths = np.minimum(dataset.lengths[clips], sampler.max_frames)
    max_frames = evaluator.config.max_frames
    values: dict[str, dict[str, list[float]]] = {GT_ROW: {}, "model": {}}

    def add(row: str, name: str, value: float) -> None:
        values[row].setdefault(name, []).append(float(value))

    embeddings: dict[str, np.ndarray] = {}
    for rep in range(settings.repetitions):
        rng = np.random.default_rng([settings.seed, rep])
        chosen = [options[int(rng.integers(len(options)))] for options in captions]
        text = evaluator.embed_captions(chosen)
        reference = evaluator.embed_features([_crop(f, max_frames, rng) for f in gt_features])
        truth = evaluator.embed_features([_crop(f, max_frames, rng) for f in gt_features])
        generated_clips = generate_clips(sampler, chosen, lengths, int(rng.integers(2**31)), settings.batch_size,
                                         progress)
        generated = evaluator.embed_clips(generated_clips)
        for row, motion in ((GT_ROW, truth), ("model", generated)):
            top = metrics.r_precision(text, motion, rng)
            add(row, "fid", metrics.fid(reference, motion))
            for k in range(3):
                add(row, f"top{k + 1}", top[k])
            add(row, "mm_dist", metrics.mm_dist(text, motion))
            add(row, "diversity", metrics.diversity(motion, rng))
        if settings.mm_texts:
            picked = rng.choice(len(clips), min(settings.mm_texts, len(clips)), replace=False)
            prompts = [chosen[i] for i in picked for _ in range(settings.mm_generations)]
            frames = np.repeat(lengths[picked], settings.mm_generations)
            mm_clips = generate_clips(sampler, prompts, frames, int(rng.integers(2**31)), settings.batch_size, progress)
            mm = evaluator.embed_clips(mm_clips).reshape(len(picked), settings.mm_generations, -1)
            add("model", "multimodality", metrics.multimodality(mm, rng))
        embeddings = {"text": text, "ground_truth": truth, "generated": generated}
    summary = {row: {name: dict(zip(("mean", "ci95"), metrics.mean_ci(v)), values=v) for name, v in row_values.items()}
               for row, row_values in values.items()}
    report = {"split": settings.split, "clips": int(len(clips)), "pool_size": min(metrics.POOL_SIZE, len(clips)),
              "diversity_pairs": metrics.diversity_pairs(len(clips)), "settings": asdict(settings), "rows": summary}
    return report, embeddings


def _crop(features: np.ndarray, max_frames: int, rng: np.random.Generator) -> np.ndarray:
    start, frames = unit_crop(len(features), max_frames, rng)
    return features[start:start + frames]


def generations_per_run(clips: int, settings: T2MSettings) -> int:
    mm = min(settings.mm_texts, clips) * settings.mm_generations if settings.mm_texts else 0
    return settings.repetitions * (clips + mm)


# ---------------------------------------------------------------- report files


def markdown_table(report: dict) -> str:
    lines = ["| Method | " + " | ".join(f"{title} {arrow}" for _, title, arrow in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for row, row_metrics in report["rows"].items():
        cells = []
        for key, _, _ in COLUMNS:
            entry = row_metrics.get(key)
            cells.append(f"{entry['mean']:.3f} ± {entry['ci95']:.3f}" if entry else "–")
        lines.append(f"| {report.get('names', {}).get(row, row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_markdown(report: dict) -> str:
    s = report["settings"]
    chance = 1 / report["pool_size"]
    notes = [
        f"# Text-to-motion evaluation (2D level)", "",
        f"- model: `{report.get('model', '')}`", f"- evaluator: `{report.get('evaluator', '')}`",
        f"- data: `{report.get('data', '')}`, split `{report['split']}` ({report['clips']} clips)",
        f"- {s['repetitions']} repetitions, mean ± 95 % confidence interval (1.96·std/√{s['repetitions']}); "
        f"seed {s['seed']}",
        f"- R-precision pools of {report['pool_size']} (chance top-1 = {chance:.3f}); diversity over "
        f"{report['diversity_pairs']} pairs; multimodality: {min(s['mm_texts'], report['clips'])} captions × "
        f"{s['mm_generations']} generations" if s["mm_texts"] else
        f"- R-precision pools of {report['pool_size']} (chance top-1 = {chance:.3f}); diversity over "
        f"{report['diversity_pairs']} pairs; multimodality skipped",
        "", markdown_table(report), "",
        "FID: distance of the motion-embedding distributions to the ground truth's (lower is better). "
        "Top-k: how often a caption finds its own motion among the k nearest of its pool. MM-Dist: "
        "caption–motion distance. Diversity: spread of the motions (closer to the ground truth is better). "
        "MModality: spread of motions generated for one caption.", ""]
    return "\n".join(notes)


def plot_report(report: dict, embeddings: dict[str, np.ndarray], out_dir: Path) -> list[Path]:
    """``metrics.png`` (each metric, ground truth vs model, with 95 % intervals) and
    ``embeddings.png`` (the last repetition's motion embeddings on their first two principal axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from k2m_core.atomic import atomic_path

    rows = list(report["rows"])
    names = [report.get("names", {}).get(r, r) for r in rows]
    fig, axes = plt.subplots(1, len(COLUMNS), figsize=(2.3 * len(COLUMNS), 3.2))
    for ax, (key, title, arrow) in zip(axes, COLUMNS):
        present = [(n, report["rows"][r][key], "#7f7f7f" if r == GT_ROW else "#1f77b4")
                   for r, n in zip(rows, names) if key in report["rows"][r]]
        ax.bar(range(len(present)), [e["mean"] for _, e, _ in present], yerr=[e["ci95"] for _, e, _ in present],
               color=[c for _, _, c in present], capsize=4)
        ax.set_xticks(range(len(present)), [n for n, _, _ in present], rotation=20, fontsize=8)
        ax.set_title(f"{title} {arrow}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{report['split']} split, {report['clips']} clips, {report['settings']['repetitions']} repetitions")
    fig.tight_layout()
    paths = [Path(out_dir) / "metrics.png", Path(out_dir) / "embeddings.png"]
    with atomic_path(paths[0]) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)

    truth, generated, text = embeddings["ground_truth"], embeddings["generated"], embeddings["text"]
    centre = truth.mean(0)
    _, _, axes_pc = np.linalg.svd(truth - centre, full_matrices=False)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for points, label, colour in ((truth, "ground truth", "#7f7f7f"), (generated, names[-1], "#1f77b4"),
                                  (text, "captions", "#ff7f0e")):
        xy = (points - centre) @ axes_pc[:2].T
        ax.scatter(xy[:, 0], xy[:, 1], s=10, alpha=0.7, label=label, color=colour)
    ax.set_title("evaluator embeddings (PCA of ground truth)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(paths[1]) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return paths


def write_report(report: dict, embeddings: dict[str, np.ndarray], out_dir: Path) -> list[Path]:
    """``report.json``, ``report.md``, ``metrics.png``, ``embeddings.png`` under ``out_dir``."""
    import json

    from k2m_core.atomic import write_bytes_atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = json.loads(json.dumps(report, default=float), parse_constant=lambda c: None)  # NaN → null
    paths = plot_report(report, embeddings, out_dir)
    write_bytes_atomic(out_dir / "report.md", report_markdown(report).encode())
    write_bytes_atomic(out_dir / "report.json", json.dumps(clean, indent=2).encode())  # last: marks completion
    return [out_dir / "report.json", out_dir / "report.md", *paths]
