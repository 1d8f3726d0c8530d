"""The text–motion evaluator of Guo et al. 2022, retrained on a k2m dataset at the 2D level
(paper §5.2/A.3, SPEC §9, REFERENCE §3): `k2m eval train-evaluator` and loading for `k2m eval t2m`.

Networks (Guo et al.'s shapes; sizes per preset, ``paper`` = theirs):

- movement encoder: Conv1d(D, h, 4, 2, 1) → Dropout → LeakyReLU → Conv1d(h, l, 4, 2, 1) → Dropout →
  LeakyReLU → Linear(l, l): one movement vector per 4 frames, over the z-scored features of
  `k2m_core.eval.features` (D = 38);
- motion encoder: Linear(l → H) → BiGRU(H) from a learned initial state, packed by frames // 4 →
  [last forward, last backward] → Linear(2H, H) → LayerNorm → LeakyReLU 0.2 → Linear(H, E);
- text encoder: word vector + Linear(15 → word_dim)(part-of-speech one-hot) → Linear(→ h_t) →
  BiGRU(h_t) → the same head → E. Word vectors are learned over the dataset's vocabulary,
  optionally initialised from a local GloVe file (`k2m_core.eval.words`).

Training: contrastive loss on Euclidean distances, ``mean(d²)`` for matching (text, motion) pairs
plus ``mean(max(0, m − d)²)`` for negatives made by rolling the batch's motions by a random shift
in [1, B − 1] (Guo et al. drew it from [0, B − 1], sometimes pairing a motion with its own text as
a negative), margin m = 10; Adam, lr 1e-4, batch 32, gradient clip 0.5 (paper preset). Unlike
Guo et al., whose movement encoder is pre-trained as an autoencoder and frozen, all parts train
together from the contrastive loss. Motions are cropped as in their data loader: to a multiple of 4
frames, one unit shorter a third of the time, at a random start.

Every ``eval_every`` steps the validation split is scored (loss, R-precision top-1/2/3 in pools of
32 averaged over ``eval_shuffles`` shuffles, MM-Dist); the weights with the lowest validation loss
are kept in ``checkpoints/best/`` and training stops early after ``patience`` evaluations without
improvement. Loading uses the best weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from k2m_core.config import from_toml
from k2m_core.data.dataset import Dataset
from k2m_core.errors import UserError
from k2m_core.eval import metrics
from k2m_core.eval.features import FEATURE_DIM, motion_features
from k2m_core.eval.words import FIRST_WORD, NUM_TAGS, PAD, encode_caption, word_index
from k2m_core.train.loop import TrainConfig
from k2m_core.train.rundir import CONFIG

UNIT = 4  # frames per movement vector: the movement encoder's two stride-2 convolutions
KIND = "evaluator"
BEST = "best"  # checkpoints/best/{model.safetensors, best.json}


@dataclass
class EvaluatorConfig:
    word_dim: int = 300  # GloVe's size
    text_hidden: int = 512
    movement_hidden: int = 512
    movement_latent: int = 512
    motion_hidden: int = 1024
    embed_dim: int = 512
    dropout: float = 0.2
    margin: float = 10.0

    def validate(self) -> "EvaluatorConfig":
        for name in ("word_dim", "text_hidden", "movement_hidden", "movement_latent", "motion_hidden", "embed_dim"):
            if getattr(self, name) < 1:
                raise UserError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise UserError(f"model.dropout must lie in [0, 1), got {self.dropout}")
        if self.margin <= 0:
            raise UserError(f"model.margin must be positive, got {self.margin}")
        return self


@dataclass
class EvaluatorRunConfig:
    kind: str = KIND
    data: str = ""  # dataset file (absolute path)
    preset: str = "cpu"
    glove: str = ""  # GloVe text file that initialised the word vectors ("": learned from scratch)
    vocab: tuple[str, ...] = ()  # filled from the training captions
    max_vocab: int = 8192
    conf_threshold: float = 0.3  # keypoints below this confidence are interpolated (features.py)
    max_frames: int = 300  # longest motion seen (10 s at 30 fps); longer clips are cropped
    eval_clips: int = 512  # validation clips scored at each evaluation
    eval_shuffles: int = 10  # R-precision averaged over this many shuffles into pools
    eval_seed: int = 1234
    patience: int = 5  # evaluations without a lower validation loss before stopping (0: never stop early)
    model: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


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


# ---------------------------------------------------------------- networks


class MovementEncoder(nn.Module):
    """``features (B, F, D)`` → movement vectors ``(B, F // 4, latent)``."""

    def __init__(self, in_dim: int, hidden: int, latent: int, dropout: float) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(in_dim, hidden, 4, 2, 1), nn.Dropout(dropout), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, latent, 4, 2, 1), nn.Dropout(dropout), nn.LeakyReLU(0.2))
        self.out_net = nn.Linear(latent, latent)

    def forward(self, features: Tensor) -> Tensor:
        return self.out_net(self.main(features.transpose(1, 2)).transpose(1, 2))


class BiGRUEncoder(nn.Module):
    """Guo et al.'s co-embedding encoder: ``inputs (B, L, in)`` with ``lengths (B,)`` → ``(B, out)``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.input_emb = nn.Linear(in_dim, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden))  # learned initial state
        self.output_net = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2),
                                        nn.Linear(hidden, out_dim))

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        x = self.input_emb(inputs)
        initial = self.hidden.expand(-1, x.shape[0], -1).contiguous()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, initial)  # (2, B, hidden): last forward state, last backward state
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


@dataclass
class EvaluatorOutput:
    loss: Tensor
    terms: dict[str, Tensor]


class TextMotionEvaluator(nn.Module):
    def __init__(self, config: EvaluatorConfig, vocab: tuple[str, ...]) -> None:
        super().__init__()
        self.config = config.validate()
        self.vocab = tuple(vocab)
        self.word_index = word_index(self.vocab)
        self.word_vectors = nn.Embedding(len(self.vocab) + FIRST_WORD, config.word_dim, padding_idx=PAD)
        self.pos_embedding = nn.Linear(NUM_TAGS, config.word_dim)
        self.text_encoder = BiGRUEncoder(config.word_dim, config.text_hidden, config.embed_dim)
        self.movement_encoder = MovementEncoder(FEATURE_DIM, config.movement_hidden, config.movement_latent,
                                                config.dropout)
        self.motion_encoder = BiGRUEncoder(config.movement_latent, config.motion_hidden, config.embed_dim)
        # z-scoring of the features (Guo et al. normalise motions by dataset statistics); saved with the weights.
        self.register_buffer("feature_mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("feature_std", torch.ones(FEATURE_DIM))

    def encode_text(self, word_ids: Tensor, tags: Tensor) -> Tensor:
        """``word_ids``, ``tags`` ``(B, L)`` long (`PAD` after each caption) → ``(B, E)``."""
        lengths = (word_ids != PAD).sum(-1).clamp_min(1)
        inputs = self.word_vectors(word_ids) + self.pos_embedding(F.one_hot(tags, NUM_TAGS).to(self.feature_mean.dtype))
        return self.text_encoder(inputs, lengths)

    def encode_motion(self, features: Tensor, frames: Tensor) -> Tensor:
        """``features (B, F, D)`` (F a multiple of 4), ``frames (B,)`` → ``(B, E)``."""
        valid = torch.arange(features.shape[1], device=features.device)[None] < frames[:, None]
        normalised = ((features - self.feature_mean) / self.feature_std) * valid[..., None]
        movements = self.movement_encoder(normalised)
        return self.motion_encoder(movements, (frames // UNIT).clamp(1, movements.shape[1]))

    def forward(self, features: Tensor, frames: Tensor, word_ids: Tensor, tags: Tensor, shift: Tensor
                ) -> EvaluatorOutput:
        text = self.encode_text(word_ids, tags)
        motion = self.encode_motion(features, frames)
        positive = (text - motion).norm(dim=-1)
        negative = (text - motion.roll(int(shift), dims=0)).norm(dim=-1)  # a shift in [1, B−1]: never its own
        loss_pos = (positive**2).mean()
        loss_neg = ((self.config.margin - negative).clamp_min(0) ** 2).mean()
        terms = {"loss_pos": loss_pos.detach(), "loss_neg": loss_neg.detach(), "dist_pos": positive.mean().detach(),
                 "dist_neg": negative.mean().detach()}
        return EvaluatorOutput(loss=loss_pos + loss_neg, terms=terms)


# ---------------------------------------------------------------- data


def unit_crop(length: int, max_frames: int, rng: np.random.Generator) -> tuple[int, int]:
    """(start, frames) of a random crop: at most ``max_frames``, a multiple of 4 frames, one unit
    shorter a third of the time (Guo et al.'s loader)."""
    units = min(length, max_frames) // UNIT
    if units > 1 and rng.random() < 1 / 3:
        units -= 1
    frames = max(units, 1) * UNIT if length >= UNIT else length
    return int(rng.integers(0, length - frames + 1)), frames


def pad_features(features: list[np.ndarray]) -> tuple[Tensor, Tensor]:
    """List of ``(F_i, D)`` → ``(B, F, D)`` zero-padded to a multiple of 4 frames, and ``frames (B,)``."""
    frames = np.array([len(f) for f in features], dtype=np.int64)
    longest = max(UNIT, -(-int(frames.max()) // UNIT) * UNIT)
    out = np.zeros((len(features), longest, FEATURE_DIM), dtype=np.float32)
    for row, f in enumerate(features):
        out[row, :len(f)] = f
    return torch.from_numpy(out), torch.from_numpy(frames)


def pad_captions(encoded: list[tuple[list[int], list[int]]]) -> tuple[Tensor, Tensor]:
    """List of (word ids, tags) → ``word_ids``, ``tags`` ``(B, L)`` long, `PAD` after each."""
    longest = max(len(ids) for ids, _ in encoded)
    ids_out = np.full((len(encoded), longest), PAD, dtype=np.int64)
    tags_out = np.zeros((len(encoded), longest), dtype=np.int64)
    for row, (ids, tags) in enumerate(encoded):
        ids_out[row, :len(ids)], tags_out[row, :len(tags)] = ids, tags
    return torch.from_numpy(ids_out), torch.from_numpy(tags_out)


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
            raise UserError("the evaluator needs at least 2 training clips; make a bigger dataset")
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
    keypoints = dataset._h5()["keypoints"][:] if dataset.total_frames * 18 * 3 * 4 < (2 << 30) else None
    out = {}
    for clip in np.asarray(clips, dtype=np.int64).tolist():
        lo, hi = int(dataset.offsets[clip]), int(dataset.offsets[clip + 1])
        frames = keypoints[lo:hi] if keypoints is not None else dataset.keypoints(clip)
        out[clip] = motion_features(frames, conf_threshold)
    return out


# ---------------------------------------------------------------- a trained evaluator


class Evaluator:
    """A trained evaluator in eval mode: 2D clips and captions → embeddings (NumPy, float64)."""

    def __init__(self, model: TextMotionEvaluator, config: EvaluatorRunConfig, device: torch.device | str = "cpu",
                 batch_size: int = 64) -> None:
        self.model, self.config = model.to(device).eval(), config
        self.device, self.batch_size = torch.device(device), batch_size

    def features(self, clip: np.ndarray) -> np.ndarray:
        return motion_features(clip, self.config.conf_threshold)

    @torch.no_grad()
    def embed_features(self, features: list[np.ndarray]) -> np.ndarray:
        """Motion embeddings ``(N, E)``; each motion's first ``max_frames`` frames."""
        out = []
        for lo in range(0, len(features), self.batch_size):
            chunk = [f[:self.config.max_frames] for f in features[lo:lo + self.batch_size]]
            padded, frames = pad_features(chunk)
            out.append(self.model.encode_motion(padded.to(self.device), frames.to(self.device)).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.embed_dim))

    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        return self.embed_features([self.features(c) for c in clips])

    @torch.no_grad()
    def embed_captions(self, captions: list[str]) -> np.ndarray:
        out = []
        for lo in range(0, len(captions), 4 * self.batch_size):
            encoded = [encode_caption(c, self.model.word_index) for c in captions[lo:lo + 4 * self.batch_size]]
            word_ids, tags = pad_captions(encoded)
            out.append(self.model.encode_text(word_ids.to(self.device), tags.to(self.device)).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.embed_dim))


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
        self.dir = Path(run_dir) / "checkpoints" / BEST
        self.patience = patience
        state = json.loads((self.dir / "best.json").read_text()) if (self.dir / "best.json").exists() else {}
        self.best, self.bad = state.get("val_loss", float("inf")), state.get("evaluations_without_improvement", 0)

    def update(self, model: nn.Module, step: int, val: dict) -> None:
        from k2m_core.atomic import write_bytes_atomic
        from k2m_core.train.checkpoint import WEIGHTS, save_weights

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


def build_evaluator(config: EvaluatorRunConfig) -> TextMotionEvaluator:
    return TextMotionEvaluator(config.model, config.vocab)


def train_evaluator(config: EvaluatorRunConfig, out: Path, *, resume: bool = False, force: bool = False,
                    command: str = "", progress: Callable[..., None] | None = None) -> dict:
    """Train per ``config`` into run directory ``out`` (or continue it with ``resume``)."""
    from k2m_core.eval.words import read_glove
    from k2m_core.train.distributed import init_distributed, resolve_device, shutdown
    from k2m_core.train.loop import fit
    from k2m_core.train.rundir import create_run_dir

    dist, device = init_distributed(resolve_device(config.train.device))
    dataset = Dataset(config.data)
    try:
        config = prepare(config, dataset)
        train_clips = dataset.captioned(dataset.splits["train"])
        if not len(train_clips):
            raise UserError(f"{dataset.path}: no clip of the train split has a caption; the evaluator needs them")
        held_out = dataset.captioned(dataset.splits["val"])
        held_out = (held_out if len(held_out) else train_clips)[:config.eval_clips]
        features = all_clip_features(dataset, np.union1d(train_clips, held_out), config.conf_threshold)
        index = word_index(config.vocab)
        captions = {c: [encode_caption(t, index) for t in dataset.captions(c)] for c in features}
        glove = read_glove(config.glove, config.vocab, config.model.word_dim) if config.glove and not resume else None
        if dist.is_main and not resume:
            create_run_dir(out, config, force=force, command=command)
        if dist.enabled:
            torch.distributed.barrier()
        torch.manual_seed(config.train.seed)  # identical initial weights on every rank
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
        batches = EvaluatorBatches(features, captions, train_clips, config.train.batch_size, config.train.seed,
                                   config.max_frames, rank=dist.rank, world_size=dist.world_size)
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

        return fit(model, batches, config.train, Path(out), dist=dist, device=device, resume=resume,
                   evaluate=evaluate, stop=stopper.should_stop, progress=progress)
    finally:
        dataset.close()
        shutdown(dist)


# ---------------------------------------------------------------- loading


def load_run_config(run_dir: Path) -> EvaluatorRunConfig:
    import tomllib

    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise UserError(f"{run_dir}: not an evaluator run directory (no {CONFIG}); train one with "
                        "`k2m eval train-evaluator DATASET --out RUN_DIR`")
    try:
        kind = tomllib.loads(path.read_text(encoding="utf-8")).get("kind")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({exc})") from None
    if kind != KIND:
        raise UserError(f"{run_dir}: not an evaluator run (made by another trainer); train one with "
                        "`k2m eval train-evaluator`")
    return from_toml(EvaluatorRunConfig, path)


def load_evaluator(run_dir: Path, device: torch.device | str = "cpu") -> Evaluator:
    """The evaluator of ``run_dir``: its best weights by validation loss (the latest checkpoint if
    it was never evaluated)."""
    from k2m_core.train.checkpoint import WEIGHTS, latest_checkpoint, load_weights

    config = load_run_config(run_dir)
    model = build_evaluator(config)
    best = Path(run_dir) / "checkpoints" / BEST / WEIGHTS
    load_weights(model, best if best.exists() else latest_checkpoint(run_dir) / WEIGHTS)
    return Evaluator(model, config, device)
