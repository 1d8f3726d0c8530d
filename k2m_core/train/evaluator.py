"""Train the text–motion evaluator (`k2m eval train-evaluator`); its networks and loading are in
`k2m_core.eval.evaluator`.

Training: contrastive loss on Euclidean distances, ``mean(d²)`` for matching (text, motion) pairs
plus ``mean(max(0, m − d)²)`` for negatives made by rolling the batch's motions by a random shift
in [1, B − 1] (Guo et al. drew it from [0, B − 1], sometimes pairing a motion with its own text as
a negative), margin m = 10; Adam, lr 1e-4, batch 32, gradient clip 0.5 (paper preset). Unlike
Guo et al., whose movement encoder is pre-trained as an autoencoder and frozen, all parts train
together from the contrastive loss. Motions are cropped as in their data loader: to a multiple of 4
frames, one unit shorter a third of the time, at a random start. Clips without captions are skipped.

Every ``eval_every`` steps the validation split is scored (loss, R-precision top-1/2/3 in pools of
32 averaged over ``eval_shuffles`` shuffles, MM-Dist); the weights with the lowest validation loss
are kept in ``checkpoints/best/`` and training stops early after ``patience`` evaluations without
improvement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from k2m_core.atomic import write_bytes_atomic
from k2m_core.data.dataset import Dataset
from k2m_core.errors import UserError
from k2m_core.eval import metrics
from k2m_core.eval.evaluator import (BEST, Evaluator, EvaluatorConfig, EvaluatorRunConfig, TextMotionEvaluator,
                                     build_evaluator, pad_captions, pad_features, unit_crop)
from k2m_core.eval.features import motion_features
from k2m_core.eval.words import FIRST_WORD, encode_caption, word_index
from k2m_core.runs import CHECKPOINTS, WEIGHTS, TrainConfig
from k2m_core.train.checkpoint import save_weights

_GUO_TRAIN = dict(batch_size=32, lr=1e-4, betas=(0.9, 0.999), warmup_steps=1, lr_milestones=(), grad_clip=0.5)
TRAIN_PRESETS = {
    "paper": TrainConfig(steps=100_000, eval_every=1000, save_every=1000, log_every=50, **_GUO_TRAIN),
    "cpu": TrainConfig(steps=2000, eval_every=200, save_every=200, log_every=25, **{**_GUO_TRAIN, "lr": 1e-3}),
    "tiny": TrainConfig(steps=30, eval_every=10, save_every=10, log_every=5, **{**_GUO_TRAIN, "batch_size": 8}),
}
MODEL_PRESETS = {
    "paper": EvaluatorConfig(),
    "cpu": EvaluatorConfig(word_dim=300, text_hidden=128, movement_hidden=128, movement_latent=128,
                           motion_hidden=128, embed_dim=128),
    "tiny": EvaluatorConfig(word_dim=16, text_hidden=16, movement_hidden=16, movement_latent=16, motion_hidden=16,
                            embed_dim=16),
}


def default_config(preset: str, data: Path) -> EvaluatorRunConfig:
    if preset not in TRAIN_PRESETS:
        raise UserError(f"--preset {preset!r}: choose one of {', '.join(TRAIN_PRESETS)}")
    return EvaluatorRunConfig(data=str(Path(data).resolve()), preset=preset, model=replace(MODEL_PRESETS[preset]),
                              train=replace(TRAIN_PRESETS[preset]))


# ---------------------------------------------------------------- batches


@dataclass
class EvaluatorBatch:
    features: Tensor  # (B, F, 38) float32, zero past each clip's frames
    frames: Tensor  # (B,) long
    word_ids: Tensor  # (B, L) long
    tags: Tensor  # (B, L) long
    shift: Tensor  # () long: negatives pair text i with motion i − shift

    def __len__(self) -> int:
        return self.features.shape[0]

    def model_inputs(self) -> dict:
        return {"features": self.features, "frames": self.frames, "word_ids": self.word_ids, "tags": self.tags,
                "shift": self.shift}

    def to(self, device) -> "EvaluatorBatch":
        return EvaluatorBatch(self.features.to(device, non_blocking=True), self.frames.to(device),
                              self.word_ids.to(device), self.tags.to(device), self.shift)


class EvaluatorBatches(torch.utils.data.Dataset):
    """``batches[step]`` → this rank's `EvaluatorBatch` of global step ``step`` (a pure function of
    seed and step): random clips of ``clips``, one random caption each, a random unit crop."""

    def __init__(self, features: dict[int, np.ndarray], captions: dict[int, list], clips: np.ndarray,
                 global_batch: int, seed: int, max_frames: int, *, rank: int = 0, world_size: int = 1) -> None:
        if global_batch % world_size or global_batch // world_size < 2:
            raise UserError(f"--batch-size {global_batch}: needs at least 2 clips per process (negatives come from "
                            f"the batch) and must be divisible by the {world_size} processes")
        if len(clips) < 2:
            raise UserError("the evaluator needs at least 2 training clips with captions; make a bigger dataset")
        self.features, self.captions, self.clips = features, captions, np.asarray(clips, dtype=np.int64)
        self.global_batch, self.seed, self.max_frames = global_batch, seed, max_frames
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:  # steps are unbounded; the loop's sampler passes step numbers
        return 1 << 62

    def __getitem__(self, step: int) -> EvaluatorBatch:
        rng = np.random.default_rng([self.seed, step])
        pick = self.clips[rng.integers(len(self.clips), size=self.global_batch)]
        choices = [int(rng.integers(len(self.captions[int(c)]))) for c in pick]
        crops = [unit_crop(len(self.features[int(c)]), self.max_frames, rng) for c in pick]
        per_rank = self.global_batch // self.world_size
        shift = int(rng.integers(1, per_rank))
        mine = range(self.rank * per_rank, (self.rank + 1) * per_rank)
        features, frames = pad_features([self.features[int(pick[i])][crops[i][0]:sum(crops[i])] for i in mine])
        word_ids, tags = pad_captions([self.captions[int(pick[i])][choices[i]] for i in mine])
        return EvaluatorBatch(features, frames, word_ids, tags, torch.tensor(shift))


def all_clip_features(dataset: Dataset, clips, conf_threshold: float) -> dict[int, np.ndarray]:
    """Evaluator features of ``clips`` (read in one pass when the file is small)."""
    keypoints = dataset.read_array("keypoints") if dataset.total_frames * 18 * 3 * 4 < (2 << 30) else None
    out = {}
    for clip in np.asarray(clips, dtype=np.int64).tolist():
        lo, hi = int(dataset.offsets[clip]), int(dataset.offsets[clip + 1])
        frames = keypoints[lo:hi] if keypoints is not None else dataset.keypoints(clip)
        out[clip] = motion_features(frames, conf_threshold)
    return out


# ---------------------------------------------------------------- validation


def score_pairs(text: np.ndarray, motion: np.ndarray, margin: float, rng: np.random.Generator,
                shuffles: int = 1) -> dict[str, float]:
    """Validation numbers of matching rows: the contrastive loss (negatives: every other motion),
    R-precision top-1/2/3 averaged over ``shuffles`` pool draws, MM-Dist."""
    dist = metrics.distance_matrix(text, motion)
    off = ~np.eye(len(dist), dtype=bool)
    loss = float((np.diag(dist) ** 2).mean() + (np.maximum(margin - dist[off], 0) ** 2).mean()) if off.any() else 0.0
    top = np.mean([metrics.r_precision(text, motion, rng) for _ in range(shuffles)], axis=0)
    return {"loss": loss, "top1": float(top[0]), "top2": float(top[1]), "top3": float(top[2]),
            "mm_dist": metrics.mm_dist(text, motion), "pool": min(metrics.POOL_SIZE, len(text))}


class EarlyStopping:
    """Keeps the weights with the lowest validation loss in ``checkpoints/best/`` and says when
    ``patience`` evaluations in a row brought no improvement. Its state lives in ``best.json`` so a
    resumed run continues counting."""

    def __init__(self, run_dir: Path, patience: int) -> None:
        self.dir = Path(run_dir) / CHECKPOINTS / BEST
        self.patience = patience
        state = json.loads((self.dir / "best.json").read_text()) if (self.dir / "best.json").exists() else {}
        self.best, self.bad = state.get("val_loss", float("inf")), state.get("evaluations_without_improvement", 0)

    def update(self, model: nn.Module, step: int, val: dict) -> None:
        if val["loss"] < self.best:
            self.best, self.bad = val["loss"], 0
            self.dir.mkdir(parents=True, exist_ok=True)
            save_weights(model, self.dir / WEIGHTS, {"step": str(step)})
        else:
            self.bad += 1
        state = {"val_loss": self.best, "evaluations_without_improvement": self.bad, "last_step": step}
        write_bytes_atomic(self.dir / "best.json", json.dumps(state).encode())

    def should_stop(self, _metrics: dict) -> bool:
        return self.patience > 0 and self.bad >= self.patience


# ---------------------------------------------------------------- training


def prepare(config: EvaluatorRunConfig, dataset: Dataset) -> EvaluatorRunConfig:
    """Fill in the vocabulary (the training captions' words, most frequent first)."""
    from k2m_core.text.words import build_vocab

    if config.vocab:
        return config
    captions = [c for i in dataset.splits["train"] for c in dataset.captions(int(i))] or dataset.all_captions
    return replace(config, vocab=build_vocab(captions, max_size=config.max_vocab))


def train_evaluator(config: EvaluatorRunConfig, out: Path, *, resume: bool = False, force: bool = False,
                    command: str = "", progress: Callable[..., None] | None = None) -> dict:
    """Train per ``config`` into run directory ``out`` (or continue it with ``resume``). Clips
    without captions are skipped; the result counts them as ``clips_without_captions``."""
    from k2m_core.eval.words import read_glove
    from k2m_core.train.session import training_session

    with training_session(config, out, resume=resume, force=force, command=command, progress=progress) as session:
        dataset, dist, device = session.dataset, session.dist, session.device
        config = prepare(config, dataset)
        train_clips = dataset.captioned(dataset.splits["train"])
        val_clips = dataset.captioned(dataset.splits["val"])
        held_out = (val_clips if len(val_clips) else train_clips)[:config.eval_clips]
        features = all_clip_features(dataset, np.union1d(train_clips, held_out), config.conf_threshold)
        index = word_index(config.vocab)
        captions = {c: [encode_caption(t, index) for t in dataset.captions(c)] for c in features}
        glove = read_glove(config.glove, config.vocab, config.model.word_dim) if config.glove and not resume else None
        batches = EvaluatorBatches(features, captions, train_clips, config.train.batch_size, config.train.seed,
                                   config.max_frames, rank=dist.rank, world_size=dist.world_size)
        session.start(config)
        model = build_evaluator(config)
        stacked = np.concatenate([features[int(c)] for c in train_clips])
        with torch.no_grad():
            model.feature_mean.copy_(torch.from_numpy(stacked.mean(0)))
            model.feature_std.copy_(torch.from_numpy(np.maximum(stacked.std(0), 1e-4)))
            if glove is not None:
                vectors, _ = glove
                found = np.abs(vectors).sum(1) > 0
                rows = torch.from_numpy(np.nonzero(found)[0] + FIRST_WORD)
                model.word_vectors.weight[rows] = torch.from_numpy(vectors[found])
        # Validation set: fixed captions and crops, so numbers are comparable across evaluations.
        rng = np.random.default_rng(config.eval_seed)
        val_captions, val_features = [], []
        for clip in held_out.tolist():
            val_captions.append(captions[clip][int(rng.integers(len(captions[clip])))])
            start, frames = unit_crop(len(features[clip]), config.max_frames, rng)
            val_features.append(features[clip][start:start + frames])
        stopper = EarlyStopping(Path(out), config.patience)

        @torch.no_grad()
        def evaluate(model: TextMotionEvaluator, step: int) -> dict:
            evaluator = Evaluator(model, config, device)
            motion = evaluator.embed_features(val_features)
            word_ids, tags = pad_captions(val_captions)
            text = model.encode_text(word_ids.to(device), tags.to(device)).double().cpu().numpy()
            val = score_pairs(text, motion, config.model.margin, np.random.default_rng(config.eval_seed),
                              config.eval_shuffles)
            stopper.update(model, step, val)
            return {f"val_{k}": v for k, v in val.items()} | {"best_val_loss": stopper.best}

        last = session.fit(model, batches, evaluate=evaluate, stop=stopper.should_stop)
        return last | {"clips_without_captions": len(dataset) - len(dataset.captioned(np.arange(len(dataset))))}
