"""Caches in the dataset file, and the (text, tokens, length) batches the models train on.

Caches (docs/design.md#dataset), so that training never runs the text encoder or the tokenizer::

    text_features/<encoder identity>   (num_captions, D) float16; attrs: identity
    motion_tokens/<tokenizer fingerprint>/codes    (total_tokens, Q) int16
    motion_tokens/<tokenizer fingerprint>/offsets  (N+1,) int64: clip i = codes[offsets[i]:offsets[i+1]]
    motion_tokens/<tokenizer fingerprint>/facing   (total_tokens,) float32: the decoded body's facing
                                                   at each token's first frame (`token_facings`)
                                                   attrs: tokenizer, tokenizer_dir, codebook_size, …

Everything is computed in memory first; the file is then opened for appending only to write it
under a temporary name and rename it into place, so an interrupted run never leaves a cache that
looks complete (a half-written temporary is deleted by the next write). A cache made by another
tokenizer has another fingerprint and is never used by mistake.

Batches are a pure function of ``(seed, step)`` and each DDP rank takes its slice, as
`k2m_core.train.windows` does for keypoint windows.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import h5py
import numpy as np
import torch
from torch import Tensor

from k2m_core.data.dataset import Dataset
from k2m_core.errors import UserError
from k2m_core.t2m.config import TokenSpec
from k2m_core.text import TextEncoder, encoder_kind

TEXT_GROUP = "text_features"
TOKENS_GROUP = "motion_tokens"
_TMP_GROUP = "_k2m_incomplete"


# ---------------------------------------------------------------- writing


@contextmanager
def _appending(path: Path) -> Iterator[h5py.File]:
    try:
        f = h5py.File(path, "a")
    except OSError as exc:
        raise UserError(f"{path}: cannot open it for writing ({exc}); close programs that read it "
                        "(a running training) and try again") from None
    try:
        if _TMP_GROUP in f:  # left by an interrupted write
            del f[_TMP_GROUP]
        yield f
    finally:
        f.close()


def _publish(f: h5py.File, final: str, write: Callable[[h5py.File, str], None]) -> None:
    """``write(f, tmp_name)`` creates the object; then it replaces ``final`` by a rename."""
    tmp = f"{_TMP_GROUP}/{uuid.uuid4().hex}"
    write(f, tmp)
    f.flush()
    if final in f:
        del f[final]
    f.require_group(final.rsplit("/", 1)[0])
    f.move(tmp, final)
    del f[_TMP_GROUP]
    f.flush()


def cache_key(identity: str) -> str:
    """HDF5 names cannot hold '/'."""
    return identity.replace("/", "_")


def encode_captions(dataset_path: str | Path, encoder: TextEncoder, *, batch_size: int = 256,
                    progress: Callable[[int], None] | None = None) -> str:
    """Encode every caption of the dataset with the frozen ``encoder`` and store the features
    (float16) as ``text_features/<identity>``; returns the identity."""
    if encoder.learned:
        raise UserError(f"--encoder {encoder.name} is learned with each model and needs no cache; "
                        "train with it directly")
    dataset = Dataset(dataset_path)
    captions = dataset.all_captions
    dataset.close()
    if not captions:
        raise UserError(f"{dataset_path}: no captions to encode; give captions to `k2m preprocess --captions`")
    features = np.empty((len(captions), encoder.dim), dtype=np.float16)
    for start in range(0, len(captions), batch_size):
        chunk = captions[start:start + batch_size]
        features[start:start + len(chunk)] = encoder.encode(chunk).cpu().numpy()
        if progress is not None:
            progress(len(chunk))

    def write(f: h5py.File, name: str) -> None:
        dset = f.create_dataset(name, data=features, chunks=(min(len(features), 4096), encoder.dim))
        dset.attrs["identity"] = encoder.identity

    with _appending(Path(dataset_path)) as f:
        _publish(f, f"{TEXT_GROUP}/{cache_key(encoder.identity)}", write)
    return encoder.identity


@torch.no_grad()
def tokenize_clips(dataset: Dataset, tokenizer: torch.nn.Module, *, device: torch.device | str = "cpu",
                   batch_size: int = 32, progress: Callable[[int], None] | None = None,
                   clips: np.ndarray | None = None) -> list[np.ndarray]:
    """The token layers of each clip of ``clips`` (indices; default every clip), ``(ceil(F/α), Q)``
    each, in that order. Clips of similar length are batched; clips longer than the adapter's
    ``adapter_maxlen`` are encoded in windows of that many frames."""
    tokenizer = tokenizer.to(device).eval()
    config = tokenizer.config
    window = config.adapter_maxlen if config.adapter == "dstformer" else 1 << 30
    wanted = np.arange(len(dataset)) if clips is None else np.asarray(clips, dtype=np.int64)
    lengths = dataset.lengths[wanted]
    out: list[np.ndarray | None] = [None] * len(wanted)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        frames = int(lengths[rows].max())
        keypoints = np.zeros((len(rows), frames, 18, 3), dtype=np.float32)
        valid = np.zeros((len(rows), frames), dtype=bool)
        for row, at in enumerate(rows):
            keypoints[row, :lengths[at]] = dataset.keypoints(int(wanted[at]))
            valid[row, :lengths[at]] = True
        keypoints_t, valid_t = torch.from_numpy(keypoints).to(device), torch.from_numpy(valid).to(device)
        focal_t = torch.from_numpy(dataset.focals[wanted[rows]]).to(device)
        codes = torch.cat([tokenizer.encode(keypoints_t[:, lo:lo + window], valid_t[:, lo:lo + window], focal_t)
                           for lo in range(0, frames, window)], dim=1).cpu().numpy()
        for row, at in enumerate(rows):
            count = -(-int(lengths[at]) // config.downsample)
            out[at] = codes[row, :count]
        if progress is not None:
            progress(len(rows))
    return out


@torch.no_grad()
def token_facings(tokenizer: torch.nn.Module, codes: list[np.ndarray], *, device: torch.device | str = "cpu",
                  batch_size: int = 32) -> list[np.ndarray]:
    """Per clip ``(T_i,)`` float32: the yaw (radians) the decoded body faces at each token's first
    frame, as seen from the camera and in `k2m_core.generate.view_yaw`'s sense: 0 faces the camera,
    −π/2 shows it the body's left side, ±π its back.

    Camera-frame tokens carry this view, which no caption states (the corpus films from every
    side); a masked transformer given it (``view_condition``) no longer has to guess it, and
    generates for a view chosen at sampling time."""
    from k2m_core.tokenizer.bodyframe import heading
    from k2m_core.tokenizer.framing import CANONICAL_SIZE  # the facing does not depend on the frame size

    tokenizer = tokenizer.to(device).eval()
    order = np.argsort([len(c) for c in codes], kind="stable")
    out: list[np.ndarray | None] = [None] * len(codes)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        steps = max(len(codes[i]) for i in rows)
        batch = np.full((len(rows), steps, codes[rows[0]].shape[1]), -1, dtype=np.int64)
        for row, at in enumerate(rows):
            batch[row, :len(codes[at])] = codes[at]
        motion = tokenizer.decode(torch.from_numpy(batch).to(device), *CANONICAL_SIZE)
        # The yaw about the camera's vertical that turns a body facing the camera into this one.
        yaw = -heading(motion.rotmats[:, ::tokenizer.downsample, 0].float()).cpu().numpy()
        for row, at in enumerate(rows):
            out[at] = yaw[row, :len(codes[at])].astype(np.float32)
    return out


def write_token_cache(dataset_path: str | Path, codes: list[np.ndarray], spec: TokenSpec, *,
                      tokenizer_dir: str = "", facings: list[np.ndarray] | None = None) -> None:
    """Store per-clip codes ``(T_i, Q)`` as ``motion_tokens/<spec.tokenizer>``, with each token's
    decoded facing ``(T_i,)`` when ``facings`` is given (`token_facings`)."""
    if not spec.tokenizer:
        raise ValueError("the token spec needs the tokenizer's fingerprint")
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in codes])]).astype(np.int64)
    dtype = np.int16 if spec.codebook_size <= np.iinfo(np.int16).max else np.int32
    flat = np.concatenate(codes).astype(dtype) if len(codes) else np.zeros((0, spec.num_quantizers), dtype)
    if flat.shape[1:] != (spec.num_quantizers,) or (flat < 0).any() or (flat >= spec.codebook_size).any():
        raise ValueError(f"codes must be (T, {spec.num_quantizers}) ids in [0, {spec.codebook_size})")
    if facings is not None and [len(f) for f in facings] != [len(c) for c in codes]:
        raise ValueError("facings must give one value per token of each clip")

    def write(f: h5py.File, name: str) -> None:
        group = f.create_group(name)
        group.create_dataset("codes", data=flat, chunks=(min(max(len(flat), 1), 65536), spec.num_quantizers))
        group.create_dataset("offsets", data=offsets)
        if facings is not None:
            group.create_dataset("facing", data=np.concatenate(facings).astype(np.float32) if len(facings)
                                 else np.zeros(0, np.float32))
        group.attrs.update(tokenizer=spec.tokenizer, tokenizer_dir=tokenizer_dir, codebook_size=spec.codebook_size,
                           num_quantizers=spec.num_quantizers, downsample=spec.downsample)

    with _appending(Path(dataset_path)) as f:
        _publish(f, f"{TOKENS_GROUP}/{spec.tokenizer}", write)


# ---------------------------------------------------------------- reading


def text_caches(dataset: Dataset) -> list[str]:
    """Identities of the encoders whose features the dataset holds."""
    return sorted(attrs.get("identity", key) for key, attrs in dataset.entries(TEXT_GROUP).items())


def read_text_features(dataset: Dataset, identity: str) -> np.ndarray:
    """``(num_captions, D)`` float16 features of encoder ``identity``."""
    key = cache_key(identity)
    if key not in dataset.entries(TEXT_GROUP):
        have = ", ".join(text_caches(dataset)) or "none"
        raise UserError(f"{dataset.path}: no text features from encoder {identity} (it has: {have}); run `k2m data "
                        f"encode-text {dataset.path} --encoder {encoder_kind(identity)}` with the same weights")
    features = dataset.read_array(f"{TEXT_GROUP}/{key}")
    if len(features) != len(dataset.all_captions):
        raise UserError(f"{dataset.path}: the {identity} text features cover {len(features)} captions, the dataset "
                        f"has {len(dataset.all_captions)}; re-run `k2m data encode-text`")
    return features


def choose_text_cache(dataset: Dataset, kind: str) -> str:
    """The one cached encoder of ``kind`` (e.g. "clip"); a `UserError` if none or several."""
    found = [identity for identity in text_caches(dataset) if encoder_kind(identity) == kind]
    if not found:
        raise UserError(f"{dataset.path}: no cached {kind} text features; run "
                        f"`k2m data encode-text {dataset.path} --encoder {kind}` first")
    if len(found) > 1:
        raise UserError(f"{dataset.path}: text features from several {kind} encoders ({', '.join(found)}); "
                        "pass the weights they came from (--clip-weights) to choose")
    return found[0]


@dataclass
class TokenCache:
    codes: np.ndarray  # (total_tokens, Q) int16
    offsets: np.ndarray  # (N+1,) int64
    facing: np.ndarray | None = None  # (total_tokens,) float32 radians; None in caches written before it

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def clip(self, i: int) -> np.ndarray:
        return self.codes[self.offsets[i]:self.offsets[i + 1]]

    def facings(self, i: int) -> np.ndarray:
        """``(T_i,)`` the decoded facing of clip ``i``'s tokens (zeros for a cache without it)."""
        if self.facing is None:
            return np.zeros(self.offsets[i + 1] - self.offsets[i], dtype=np.float32)
        return self.facing[self.offsets[i]:self.offsets[i + 1]]


def check_view(dataset: Dataset, spec: TokenSpec) -> None:
    """Refuse a dataset whose clips are in another view than the one the model's tokens were made
    in (`k2m data front` files against models of clips as filmed, and the other way round)."""
    view = str(dataset.attrs.get("view", "camera"))
    if view != spec.view:
        fix = ("give the `k2m data front` file it was trained on" if spec.view == "front"
               else "give the clips as filmed, not a `k2m data front` file")
        raise UserError(f"{dataset.path}: its clips are in the {view} view, the model's tokens in the {spec.view} "
                        f"view; {fix}")


def read_token_cache(dataset: Dataset, spec: TokenSpec, tokenizer_dir: str = "") -> TokenCache:
    """The tokens made by the tokenizer ``spec.tokenizer``; refuses caches of any other tokenizer
    and clips in another view (`check_view`)."""
    check_view(dataset, spec)
    caches = dataset.entries(TOKENS_GROUP)
    command = f"`k2m data tokenize {dataset.path} --tokenizer {tokenizer_dir or 'RUN_DIR'}`"
    if spec.tokenizer not in caches:
        others = [f"{key} (from {attrs.get('tokenizer_dir', '?')})" for key, attrs in caches.items()]
        detail = (f"its token cache was built with another tokenizer: {', '.join(others)}; " if others
                  else "it has no token cache; ")
        raise UserError(f"{dataset.path}: no motion tokens from tokenizer {spec.tokenizer}: {detail}run {command}")
    attrs = caches[spec.tokenizer]
    for key in ("codebook_size", "num_quantizers", "downsample"):
        if int(attrs[key]) != getattr(spec, key):
            raise UserError(f"{dataset.path}: token cache {spec.tokenizer} has {key} {int(attrs[key])}, "
                            f"the model expects {getattr(spec, key)}; re-run {command}")
    entry = f"{TOKENS_GROUP}/{spec.tokenizer}"
    facing = dataset.read_array(f"{entry}/facing") if dataset.contains(f"{entry}/facing") else None
    cache = TokenCache(codes=dataset.read_array(f"{entry}/codes"), offsets=dataset.read_array(f"{entry}/offsets"),
                       facing=facing)
    if len(cache.offsets) != len(dataset) + 1:
        raise UserError(f"{dataset.path}: token cache {spec.tokenizer} covers {len(cache.offsets) - 1} clips, the "
                        f"dataset has {len(dataset)}; re-run {command}")
    return cache


# ---------------------------------------------------------------- batches


@dataclass
class T2MBatch:
    text: Tensor  # (B, D) float features, or (B, L) long word ids of a learned encoder
    codes: Tensor  # (B, T, Q) long, −1 after each clip's length
    lengths: Tensor  # (B,) long, tokens per clip
    clip_index: Tensor  # (B,) long
    facing: Tensor  # (B,) float radians: the decoded facing at each window's first token

    def __len__(self) -> int:
        return self.codes.shape[0]

    def model_inputs(self) -> dict:
        return {"text": self.text, "codes": self.codes, "lengths": self.lengths, "facing": self.facing}

    def to(self, device) -> "T2MBatch":
        return T2MBatch(self.text.to(device, non_blocking=True), self.codes.to(device, non_blocking=True),
                        self.lengths.to(device), self.clip_index.to(device), self.facing.to(device))


class TokenTextBatches(torch.utils.data.Dataset):
    """``batches[step]`` → this rank's `T2MBatch` of global step ``step``: random clips of
    ``clips``, one random caption each, a random window of at most ``max_tokens`` tokens.

    ``text`` holds one row per caption of the dataset: float16 features, or padded word ids."""

    def __init__(self, tokens: TokenCache, text: np.ndarray, caption_offsets: np.ndarray, clips: np.ndarray,
                 max_tokens: int, global_batch: int, seed: int, *, rank: int = 0, world_size: int = 1) -> None:
        if global_batch % world_size:
            raise UserError(f"--batch-size {global_batch} must be divisible by the {world_size} processes")
        if len(clips) == 0:
            raise UserError("no clips to train on: the split is empty; make a bigger dataset")
        if (np.diff(caption_offsets)[clips] == 0).any():
            raise ValueError("every clip of a text-to-motion batch needs a caption (pass Dataset.captioned(clips))")
        self.tokens, self.text, self.caption_offsets = tokens, text, caption_offsets
        self.clips, self.max_tokens = np.asarray(clips, dtype=np.int64), max_tokens
        self.global_batch, self.seed, self.rank, self.world_size = global_batch, seed, rank, world_size

    def __len__(self) -> int:  # steps are unbounded; the loop's sampler passes step numbers
        return 1 << 62

    def __getitem__(self, step: int) -> T2MBatch:
        rng = np.random.default_rng([self.seed, step])
        pick = self.clips[rng.integers(len(self.clips), size=self.global_batch)]
        first, count = self.caption_offsets[pick], np.diff(self.caption_offsets)[pick]
        captions = first + (rng.random(self.global_batch) * count).astype(np.int64)
        spare = np.maximum(self.tokens.lengths[pick] - self.max_tokens, 0)
        starts = (rng.random(self.global_batch) * (spare + 1)).astype(np.int64)
        per_rank = self.global_batch // self.world_size
        mine = slice(self.rank * per_rank, (self.rank + 1) * per_rank)
        return self.batch(pick[mine], captions[mine], starts[mine])

    def batch(self, clips: np.ndarray, captions: np.ndarray, starts: np.ndarray | None = None) -> T2MBatch:
        """The batch of these clips with these caption indices, windows from ``starts`` (default 0)."""
        starts = np.zeros(len(clips), dtype=np.int64) if starts is None else starts
        lengths = np.minimum(self.tokens.lengths[clips] - starts, self.max_tokens)
        codes = np.full((len(clips), int(lengths.max()), self.tokens.codes.shape[1]), -1, dtype=np.int64)
        facing = np.zeros(len(clips), dtype=np.float32)
        for row, (clip, start, length) in enumerate(zip(clips, starts, lengths)):
            codes[row, :length] = self.tokens.clip(int(clip))[start:start + length]
            facing[row] = self.tokens.facings(int(clip))[start]
        text = self.text[captions]
        if np.issubdtype(text.dtype, np.integer):  # word ids: trim the common padding
            text = text[:, :max(int((text != 0).sum(1).max()), 1)].astype(np.int64)
        else:
            text = text.astype(np.float32)
        return T2MBatch(torch.from_numpy(text), torch.from_numpy(codes), torch.from_numpy(lengths.astype(np.int64)),
                        torch.from_numpy(np.asarray(clips, dtype=np.int64)), torch.from_numpy(facing))

    def fixed(self, clips: np.ndarray) -> T2MBatch:
        """Evaluation batch: each clip with its first caption, from its first token."""
        return self.batch(np.asarray(clips, dtype=np.int64), self.caption_offsets[clips])


def word_ids(encoder: TextEncoder, captions: list[str]) -> np.ndarray:
    """``(num_captions, max_words)`` int32 ids of a learned encoder (0 = padding)."""
    ids = np.zeros((len(captions), encoder.max_words), dtype=np.int32)
    for start in range(0, len(captions), 4096):
        chunk = encoder.tokenize(captions[start:start + 4096]).numpy()
        ids[start:start + len(chunk), :chunk.shape[1]] = chunk
    return ids
