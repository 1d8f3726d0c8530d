"""Does a text-to-motion model use a word? (`k2m eval text-use`, docs/design.md#evaluation)

Two measurements, for word pairs such as left:right:

- **Cross-entropy with every token masked.** For the clips whose caption names a word of a pair,
  the masked transformer sees no motion token, only the text, and scores the clip's true base-layer
  tokens (mean per-token cross-entropy, nats) under (a) the clip's own caption, (b) that caption
  with the pair's words swapped, (c) another clip's caption. A model that reads the word scores (b)
  worse than (a); one that ignores it scores them the same. (c) − (a) is how much the caption as a
  whole matters, the scale to judge (b) − (a) against.
- **Direction count** (pairs of sides only): motions generated for "a person walks to the left"
  and "… to the right"; how many move the root at least `MIN_MOVE_M` towards the named side of the
  subject's own body (its left at the first frame), and how many towards the other side.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from k2m_core.body.kinematics import JOINT_NAMES
from k2m_core.data.dataset import Dataset
from k2m_core.data.mirror import swap_words, word_pattern
from k2m_core.errors import UserError
from k2m_core.t2m.models import padding_mask

SIDES = ("left", "right")
MIN_MOVE_M = 0.2
PROMPT = "a person walks to the {}"
_LEFT_OF = [(JOINT_NAMES.index(f"left_{part}"), JOINT_NAMES.index(f"right_{part}")) for part in ("hip", "shoulder")]
_WORD = re.compile(r"[a-z][a-z'-]*")


# ---------------------------------------------------------------- words and clips


def parse_swaps(values: list[str]) -> list[tuple[str, str]]:
    """``--swap A:B`` values → lower-case word pairs."""
    pairs = []
    for value in values:
        first, colon, second = value.strip().lower().partition(":")
        if not (colon and _WORD.fullmatch(first) and _WORD.fullmatch(second)) or first == second:
            raise UserError(f"--swap {value!r}: give two different words as A:B, e.g. --swap left:right")
        pairs.append((first, second))
    return pairs


def swapped(caption: str, pairs: list[tuple[str, str]]) -> str:
    """``caption`` with each pair's words exchanged (whole words, case kept)."""
    return swap_words(caption, {a: b for pair in pairs for a, b in (pair, pair[::-1])})


def select_clips(dataset: Dataset, split: str, pairs: list[tuple[str, str]],
                 max_clips: int | None = None) -> tuple[np.ndarray, list[str]]:
    """The clips of ``split`` with a caption naming a word of ``pairs`` (at most ``max_clips``, in
    file order) and, per clip, the first such caption."""
    pattern = word_pattern(tuple(word for pair in pairs for word in pair))
    clips, captions = [], []
    for clip in dataset.splits[split].tolist():
        found = next((c for c in dataset.captions(clip) if pattern.search(c)), None)
        if found is not None:
            clips.append(clip)
            captions.append(found)
    if not clips:
        words = ", ".join(word for pair in pairs for word in pair)
        raise UserError(f"{dataset.path}: no caption of a {split!r} clip names {words}; choose other words "
                        "(--swap A:B) or another --split")
    return np.asarray(clips[:max_clips], dtype=np.int64), captions[:max_clips]


def other_captions(captions: list[str], seed: int) -> np.ndarray:
    """``(N,)`` for each clip the index of the clip whose caption it is also scored under: a
    fixed-seed derangement (each caption used once, so (c) has the caption mix of (a)), with
    pairings of equal captions swapped away; where none can be, another differing caption."""
    ids = np.unique(captions, return_inverse=True)[1].reshape(-1)
    if len(captions) < 2 or ids.max() == 0:
        raise UserError(f"the {len(captions)} selected clips share one caption; another clip's caption needs two "
                        "different ones (use more clips: --split, --max-clips)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    target = np.empty_like(order)
    target[order] = np.roll(order, -1)
    for i in np.flatnonzero(ids[target] == ids):
        if ids[target[i]] != ids[i]:  # fixed by an earlier swap
            continue
        partner = next((j for j in rng.permutation(len(ids))
                        if ids[target[j]] != ids[i] and ids[target[i]] != ids[j]), None)
        if partner is None:
            target[i] = rng.choice(np.flatnonzero(ids != ids[i]))
        else:
            target[i], target[partner] = target[partner], target[i]
    return target


# ---------------------------------------------------------------- cross-entropy


def base_tokens(sampler, dataset: Dataset, clips: np.ndarray, device) -> tuple[list[np.ndarray], np.ndarray, str]:
    """The base-layer tokens ``(T_i,)`` of ``clips``, their facings at the first token ``(N,)``
    (`k2m_core.t2m.data.token_facings`) and where they came from: the dataset's token cache of the
    model's tokenizer ("cache"), else the tokenizer run on the keypoints ("encoded"; for a model of
    front-view tokens, on the clips seen from the front, `k2m_core.data.front.front_tokens`)."""
    from k2m_core.t2m.data import TOKENS_GROUP, check_view, read_token_cache, token_facings, tokenize_clips

    spec = sampler.tokens
    if spec.view == "front" and dataset.attrs.get("view", "camera") == "camera" and sampler.tokenizer is not None:
        from k2m_core.data.front import front_tokens  # clips as filmed, for a front-view model: turn them first

        codes = front_tokens(sampler.tokenizer, dataset, clips)
        return [c[:, 0].astype(np.int64) for c in codes], np.zeros(len(codes)), "encoded"
    check_view(dataset, spec)
    if spec.tokenizer in dataset.entries(TOKENS_GROUP):
        cache = read_token_cache(dataset, spec)
        if cache.facing is not None or sampler.transformer.view is None:
            return ([cache.clip(int(i))[:, 0].astype(np.int64) for i in clips],
                    np.array([cache.facings(int(i))[0] for i in clips]), "cache")
    if sampler.tokenizer is None:
        raise UserError(f"{dataset.path}: no motion tokens from tokenizer {spec.tokenizer} (with their "
                        "facings, for a view-conditioned model) and no tokenizer to make them; run `k2m data "
                        "tokenize` or pass a model folder with its vq/")
    codes = tokenize_clips(dataset, sampler.tokenizer, device=device, clips=clips)
    facings = token_facings(sampler.tokenizer, codes, device=device)
    return [c[:, 0].astype(np.int64) for c in codes], np.array([f[0] for f in facings]), "encoded"


@torch.no_grad()
def masked_cross_entropy(sampler, captions: list[str], tokens: list[np.ndarray], facings: np.ndarray,
                         batch_size: int = 64) -> np.ndarray:
    """``(N,)`` mean cross-entropy (nats) per clip of its base tokens ``tokens[i] (T_i,)`` (cropped to
    the model's ``max_tokens``), every one masked, under ``captions[i]`` (and, for a view-conditioned
    model, the clip's own view ``facings[i]``)."""
    model = sampler.transformer
    out = []
    for start in range(0, len(tokens), batch_size):
        chunk = [t[:model.tokens.max_tokens] for t in tokens[start:start + batch_size]]
        lengths = torch.tensor([len(t) for t in chunk], device=sampler.device)
        base = torch.zeros(len(chunk), int(lengths.max()), dtype=torch.long, device=sampler.device)
        for row, t in enumerate(chunk):
            base[row, :len(t)] = torch.from_numpy(t)
        pad = padding_mask(lengths, base.shape[1])
        ids = torch.full_like(base, model.mask_id).masked_fill(pad, model.pad_id)
        facing = torch.as_tensor(facings[start:start + batch_size], dtype=torch.float32, device=sampler.device)
        cond = model.condition(sampler.text_input(model, captions[start:start + batch_size]), facing=facing)
        logits = model.logits(ids, cond, pad).float()
        ce = F.cross_entropy(logits.transpose(1, 2), base, reduction="none").masked_fill(pad, 0.0)
        out.append((ce.sum(1) / lengths).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def mean_se(values: np.ndarray) -> dict[str, float]:
    """Mean and its standard error over clips, and the 95 % normal interval."""
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
    return {"mean": mean, "se": se, "ci95": [mean - 1.96 * se, mean + 1.96 * se]}


def caption_use(sampler, captions: list[str], tokens: list[np.ndarray], facings: np.ndarray,
                pairs: list[tuple[str, str]], seed: int) -> dict:
    """Cross-entropy under the own, the swapped and another clip's caption (mean ± s.e. over clips)
    and the per-clip gaps swapped − own and other − own."""
    other = other_captions(captions, seed)
    ce = {"own": masked_cross_entropy(sampler, captions, tokens, facings),
          "swapped": masked_cross_entropy(sampler, [swapped(c, pairs) for c in captions], tokens, facings),
          "other": masked_cross_entropy(sampler, [captions[j] for j in other], tokens, facings)}
    return {"cross_entropy": {name: mean_se(values) for name, values in ce.items()},
            "gap": {"swapped_minus_own": mean_se(ce["swapped"] - ce["own"]),
                    "other_minus_own": mean_se(ce["other"] - ce["own"])},
            "per_clip": {name: values.tolist() for name, values in ce.items()}}


# ---------------------------------------------------------------- direction count


def side_moves(joints: np.ndarray, up: int) -> np.ndarray:
    """``joints (N, F, 24, 3)`` → ``(N,)`` metres the pelvis moved from the first to the last frame
    along the body's own left at the first frame (hips and shoulders, left − right), in the ground
    plane (the axes other than ``up``); negative towards its right."""
    ground = [axis for axis in range(3) if axis != up]
    first = joints[:, 0][..., ground]
    left = sum(first[:, a] - first[:, b] for a, b in _LEFT_OF)
    left = left / np.linalg.norm(left, axis=-1, keepdims=True).clip(1e-9)
    moved = (joints[:, -1, 0] - joints[:, 0, 0])[..., ground]
    return (moved * left).sum(-1)


def direction_prompts(pairs: list[tuple[str, str]], prompts: list[str] | None = None) -> list[tuple[str, str]]:
    """(prompt, side) to generate for: ``prompts`` (each naming exactly one side), else
    `PROMPT` for each word of the pairs of sides."""
    if prompts:
        out = []
        for prompt in prompts:
            named = sorted({m.lower() for m in word_pattern(SIDES).findall(prompt)})
            if len(named) != 1:
                raise UserError(f"--prompt {prompt!r}: name one side, left or right, e.g. '{PROMPT.format('left')}'")
            out.append((prompt, named[0]))
        return out
    return [(PROMPT.format(word), word) for pair in pairs if set(pair) <= set(SIDES) for word in pair]


def direction_counts(sampler, prompts: list[tuple[str, str]], samples: int, frames: int, seed: int) -> list[dict]:
    """Generate ``samples`` motions of ``frames`` frames per (prompt, side); per prompt how many move
    at least `MIN_MOVE_M` towards the named side and towards the other, and the mean move."""
    texts = [prompt for prompt, _ in prompts for _ in range(samples)]
    generated = sampler.generate(texts, [frames] * len(texts), seed=seed)
    # Camera frame (y down): the world frame `k2m gen` writes is this one turned about x, so the
    # ground plane is the camera's x–z plane.
    moves = side_moves(generated.motion.joints.double().cpu().numpy(), up=1).reshape(len(prompts), samples)
    out = []
    for (prompt, side), move in zip(prompts, moves):
        towards = move if side == "left" else -move
        out.append({"prompt": prompt, "side": side, "samples": samples, "towards": int((towards >= MIN_MOVE_M).sum()),
                    "away": int((towards <= -MIN_MOVE_M).sum()), "mean_move_m": float(towards.mean())})
    return out
