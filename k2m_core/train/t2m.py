"""Train the text-to-motion models (`k2m train transformer|residual|length`).

Each trainer reads cached motion tokens (`k2m data tokenize`) and, for a frozen text encoder,
cached caption features (`k2m data encode-text`) from the dataset file, so a step never runs the
tokenizer or CLIP. A run's ``config.toml`` records the tokenizer's fingerprint and the text
encoder's identity; loading (`k2m_core.loading`) checks both.

Evaluation (validation split; the train split when it is empty), each with its baseline:

- transformer: accuracy on masked tokens (cosine-schedule masking, fixed seed) and with every token
  masked (text alone), against always predicting the most frequent base code;
- residual: accuracy of each layer 1…Q−1 given the true layers below, averaged, against each
  layer's most frequent code;
- length: mean absolute error in frames of the predicted distribution's median, against always
  predicting the training median; Pearson correlation of the expected length with the truth.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from k2m_core.data.dataset import Dataset
from k2m_core.errors import UserError
from k2m_core.runs import T2M_CONFIGS, T2MRunConfig, TrainConfig
from k2m_core.t2m.config import TextSpec, length_preset, masked_preset, residual_preset

# Step counts and batch sizes per preset (paper §5.1: batch 64, lr 2e-4, Adam).
TRAIN_PRESETS = {
    "paper": TrainConfig(steps=150_000, batch_size=64, lr=2e-4, warmup_steps=2000, lr_gamma=0.1,
                         eval_every=5000, save_every=5000),
    "cpu": TrainConfig(steps=3000, batch_size=64, lr=5e-4, warmup_steps=200, lr_gamma=0.1, log_every=20,
                       eval_every=500, save_every=500),
    "tiny": TrainConfig(steps=40, batch_size=8, lr=1e-3, warmup_steps=5, log_every=5, eval_every=20,
                        save_every=20),
}
LENGTH_STEPS = {"paper": 20_000, "cpu": 1500, "tiny": 40}
_PRESETS = {"transformer": masked_preset, "residual": residual_preset, "length": length_preset}


def default_config(kind: str, preset: str, data: Path, tokenizer: Path, encoder: str = "clip") -> T2MRunConfig:
    """The run config of ``kind`` at ``preset``; text and token specs are resolved by `prepare`."""
    if preset not in TRAIN_PRESETS:
        raise UserError(f"--preset {preset!r}: choose one of {', '.join(TRAIN_PRESETS)}")
    train = replace(TRAIN_PRESETS[preset])
    if kind == "length":
        train = replace(train, steps=LENGTH_STEPS[preset])
    return T2M_CONFIGS[kind](data=str(Path(data).resolve()), tokenizer=str(Path(tokenizer).resolve()),
                             preset=preset, text=TextSpec(name=encoder), model=_PRESETS[kind](preset), train=train)


# ---------------------------------------------------------------- resolving text and tokens


def prepare(config: T2MRunConfig, *, clip_weights: str | None = None, dataset: Dataset | None = None) -> T2MRunConfig:
    """Fill in the tokenizer's fingerprint and the text encoder's identity (and vocabulary), so
    the config says exactly which tokens and features the model is trained on."""
    from k2m_core.t2m.data import choose_text_cache, read_text_features
    from k2m_core.text import ENCODERS, load_text_encoder

    if dataset is None:
        dataset = Dataset(config.data)
        try:
            return prepare(config, clip_weights=clip_weights, dataset=dataset)
        finally:
            dataset.close()
    config = replace(config)
    if not config.tokens.tokenizer:
        from k2m_core.loading import load_tokenizer
        from k2m_core.t2m.tokens import token_spec

        config.tokens = token_spec(load_tokenizer(config.tokenizer), config.tokens.max_tokens)
        config.tokens.view = str(dataset.attrs.get("view", "camera"))
        if config.tokens.view not in ("camera", "front"):
            raise UserError(f"{dataset.path}: its view attribute is {config.tokens.view!r}; k2m writes 'front' "
                            "(`k2m data front`) or nothing: re-create the file")
    text = config.text
    if not text.identity:
        if text.name not in ENCODERS:
            raise UserError(f"--encoder {text.name!r}: choose one of {', '.join(ENCODERS)}")
        if text.name == "words":
            from k2m_core.text.words import WordEncoder, build_vocab

            captions = [c for i in dataset.splits["train"] for c in dataset.captions(int(i))] or dataset.all_captions
            encoder = WordEncoder(build_vocab(captions))
            config.text = replace(text, identity=encoder.identity, dim=encoder.dim, vocab=encoder.vocab)
        else:
            if text.name == "clip" and not clip_weights:
                identity = choose_text_cache(dataset, "clip")
            else:
                identity = load_text_encoder(text.name, clip_weights).identity
            config.text = replace(text, identity=identity, dim=int(read_text_features(dataset, identity).shape[1]))
    return config


def _text_rows(config: T2MRunConfig, dataset: Dataset) -> np.ndarray:
    """One row per caption: cached float16 features, or word ids for a learned encoder."""
    from k2m_core.t2m.data import read_text_features, word_ids
    from k2m_core.text.words import WordEncoder

    if config.text.learned:
        return word_ids(WordEncoder(config.text.vocab, config.text.dim), dataset.all_captions)
    return read_text_features(dataset, config.text.identity)


# ---------------------------------------------------------------- evaluation


def _chunks(clips: np.ndarray, size: int = 64):
    for start in range(0, len(clips), size):
        yield clips[start:start + size]


def _mode(values: np.ndarray, size: int) -> int:
    return int(np.bincount(values.astype(np.int64), minlength=size).argmax()) if len(values) else 0


def evaluation(config: T2MRunConfig, batches, train_clips: np.ndarray, eval_clips: np.ndarray,
               device: torch.device) -> Callable[[torch.nn.Module, int], dict]:
    """``evaluate(model, step) → metrics`` for the loop (the model is in eval mode, no grad)."""
    from k2m_core.t2m.models import IGNORE, padding_mask

    tokens = batches.tokens
    train_codes = np.concatenate([tokens.clip(int(i)) for i in train_clips])
    modes = [_mode(train_codes[:, q], config.tokens.codebook_size) for q in range(train_codes.shape[1])]
    train_lengths = np.minimum(tokens.lengths[train_clips], config.tokens.max_tokens)
    median_tokens = float(np.median(train_lengths))
    frames_per_token = config.tokens.downsample

    def masked(model, step) -> dict:
        hits = hits_all = base_hits = scored = positions = 0
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(config.eval_seed)
            for clips in _chunks(eval_clips):
                batch = batches.fixed(clips).to(device)
                out = model(**batch.model_inputs())
                mask = out.targets != IGNORE
                hits += int((out.logits.argmax(-1) == out.targets)[mask].sum())
                base_hits += int((out.targets == modes[0])[mask].sum())
                scored += int(mask.sum())
                pad = padding_mask(batch.lengths, batch.codes.shape[1])
                ids = torch.full_like(batch.codes[..., 0], model.mask_id).masked_fill(pad, model.pad_id)
                every = model.logits(ids, model.condition(batch.text, facing=batch.facing), pad).argmax(-1)
                hits_all += int((every == batch.codes[..., 0])[~pad].sum())
                positions += int((~pad).sum())
        return {"masked_acc": hits / max(scored, 1), "masked_acc_all_masked": hits_all / max(positions, 1),
                "masked_freq_baseline": base_hits / max(scored, 1)}

    def residual(model, step) -> dict:
        layers = config.tokens.num_quantizers - 1
        hits, base_hits, counts = np.zeros(layers), np.zeros(layers), np.zeros(layers)
        for clips in _chunks(eval_clips):
            batch = batches.fixed(clips).to(device)
            pad = padding_mask(batch.lengths, batch.codes.shape[1])
            cond = model.condition(batch.text)
            for j in range(1, layers + 1):
                layer = torch.full((len(batch),), j, dtype=torch.long, device=device)
                predicted = model.logits(batch.codes, layer, cond, pad).argmax(-1)
                truth = batch.codes[..., j]
                hits[j - 1] += int((predicted == truth)[~pad].sum())
                base_hits[j - 1] += int((truth == modes[j])[~pad].sum())
                counts[j - 1] += int((~pad).sum())
        accuracy, baseline = hits / np.maximum(counts, 1), base_hits / np.maximum(counts, 1)
        metrics = {"residual_acc": float(accuracy.mean()), "residual_freq_baseline": float(baseline.mean())}
        metrics.update({f"residual_acc_layer{j + 1}": float(a) for j, a in enumerate(accuracy)})
        return metrics

    def length(model, step) -> dict:
        predicted, expected, truth = [], [], []
        for clips in _chunks(eval_clips):
            batch = batches.fixed(clips).to(device)
            probs = model.logits(batch.text).softmax(-1)
            classes = torch.arange(probs.shape[1], device=device, dtype=probs.dtype)
            predicted.append((probs.cumsum(-1) >= 0.5).float().argmax(-1).cpu())  # the median
            expected.append((probs * classes).sum(-1).cpu())
            truth.append(batch.lengths.cpu())
        predicted_t, expected_t, truth_t = torch.cat(predicted).double(), torch.cat(expected).double(), \
            torch.cat(truth).double()
        corr = float(torch.corrcoef(torch.stack([expected_t, truth_t]))[0, 1]) if len(truth_t) > 1 else float("nan")
        return {"length_mae_frames": float((predicted_t - truth_t).abs().mean()) * frames_per_token,
                "length_baseline_mae_frames": float((median_tokens - truth_t).abs().mean()) * frames_per_token,
                "length_corr": corr}

    return {"transformer": masked, "residual": residual, "length": length}[config.kind]


# ---------------------------------------------------------------- training


def train_t2m(config: T2MRunConfig, out: Path, *, resume: bool = False, force: bool = False, command: str = "",
              clip_weights: str | None = None, progress: Callable[..., None] | None = None) -> dict:
    """Train the model of ``config.kind`` into run directory ``out`` (or continue it). Clips
    without captions are skipped; the result counts them as ``clips_without_captions``."""
    from k2m_core.loading import build_t2m_model
    from k2m_core.t2m.data import TokenTextBatches, read_token_cache
    from k2m_core.train.session import training_session

    with training_session(config, out, resume=resume, force=force, command=command, progress=progress) as session:
        dataset, dist = session.dataset, session.dist
        config = prepare(config, clip_weights=clip_weights, dataset=dataset)
        tokens = read_token_cache(dataset, config.tokens, config.tokenizer)
        if getattr(config.model, "view_condition", False) and tokens.facing is None:
            raise UserError(f"{dataset.path}: model.view_condition needs each token's facing, which this token "
                            f"cache predates; re-run `k2m data tokenize {dataset.path} --tokenizer {config.tokenizer}`")
        text = _text_rows(config, dataset)
        train_clips = dataset.captioned(dataset.splits["train"])
        val_clips = dataset.captioned(dataset.splits["val"])
        if not len(train_clips):
            raise UserError(f"{dataset.path}: no training clip has a caption; text-to-motion models learn from "
                            "captions (give them to `k2m preprocess --captions`)")
        session.start(config)
        model = build_t2m_model(config)
        batches = TokenTextBatches(tokens, text, dataset.caption_offsets, train_clips, config.tokens.max_tokens,
                                   config.train.batch_size, config.train.seed, rank=dist.rank,
                                   world_size=dist.world_size)
        held_out = val_clips if len(val_clips) else train_clips
        evaluate = evaluation(config, batches, train_clips, held_out[:config.eval_clips], session.device)
        last = session.fit(model, batches, evaluate=evaluate)
        return last | {"clips_without_captions": len(dataset) - len(dataset.captioned(np.arange(len(dataset))))}
