"""The text–motion evaluator of Guo et al. 2022, retrained on a k2m dataset at the 2D level
(paper §5.2/A.3): its networks, and loading a trained one for `k2m eval t2m`.

Networks (Guo et al.'s shapes; sizes per preset, ``paper`` = theirs):

- movement encoder: Conv1d(D, h, 4, 2, 1) → Dropout → LeakyReLU → Conv1d(h, l, 4, 2, 1) → Dropout →
  LeakyReLU → Linear(l, l): one movement vector per 4 frames, over the z-scored features of
  `k2m_core.eval.features` (D = 38);
- motion encoder: Linear(l → H) → BiGRU(H) from a learned initial state, packed by frames // 4 →
  [last forward, last backward] → Linear(2H, H) → LayerNorm → LeakyReLU 0.2 → Linear(H, E);
- text encoder: word vector + Linear(15 → word_dim)(part-of-speech one-hot) → Linear(→ h_t) →
  BiGRU(h_t) → the same head → E. Word vectors are learned over the dataset's vocabulary,
  optionally initialised from a local GloVe file (`k2m_core.eval.words`).

Training (`k2m_core.train.evaluator`) keeps the weights with the lowest validation loss in
``checkpoints/best/``; loading uses those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from k2m_core.errors import UserError
from k2m_core.eval.features import FEATURE_DIM, motion_features
from k2m_core.eval.words import FIRST_WORD, NUM_TAGS, PAD, encode_caption, word_index
from k2m_core.runs import CHECKPOINTS, WEIGHTS, TrainConfig, latest_checkpoint, load_weights, read_run_config

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


# ---------------------------------------------------------------- loading


def build_evaluator(config: EvaluatorRunConfig) -> TextMotionEvaluator:
    return TextMotionEvaluator(config.model, config.vocab)


def load_evaluator(run_dir: Path, device: torch.device | str = "cpu") -> Evaluator:
    """The evaluator of ``run_dir``: its best weights by validation loss (the latest checkpoint if
    it was never evaluated)."""
    config = read_run_config(run_dir, EvaluatorRunConfig)
    model = build_evaluator(config)
    best = Path(run_dir) / CHECKPOINTS / BEST / WEIGHTS
    load_weights(model, best if best.exists() else latest_checkpoint(run_dir) / WEIGHTS)
    return Evaluator(model, config, device)
