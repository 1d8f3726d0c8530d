"""Trained models from run directories, and the device to run them on: what `k2m gen`, `k2m eval`
and `k2m data tokenize` load. Nothing here imports training code."""

from __future__ import annotations

from pathlib import Path

import torch

from k2m_core.errors import UserError
from k2m_core.runs import (T2M_CONFIGS, T2M_KINDS, WEIGHTS, T2MRunConfig, VQRunConfig, latest_checkpoint,
                           load_weights, read_run_config)
from k2m_core.t2m.config import SamplingOverrides, TextSpec
from k2m_core.t2m.tokens import tokenizer_fingerprint
from k2m_core.tokenizer.config import TokenizerConfig


def resolve_device(name: str) -> torch.device:
    """``--device`` cpu | cuda[:N] | auto → a torch device (auto: CUDA when there is one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UserError(f"--device {name!r}: choose cpu, cuda or auto")
    return torch.device(name)


def build_tokenizer(config: TokenizerConfig) -> torch.nn.Module:
    """A fresh MotionVQ-Adapter of ``config`` with its body model."""
    from k2m_core.body import load_body_model
    from k2m_core.tokenizer.model import MotionVQAdapter

    return MotionVQAdapter(config.validate(), load_body_model(config.body_model))


def build_t2m_model(config: T2MRunConfig) -> torch.nn.Module:
    """A fresh text-to-motion model of ``config.kind``."""
    from k2m_core.t2m.models import LengthEstimator, MaskedTransformer, ResidualTransformer

    model_class = {"transformer": MaskedTransformer, "residual": ResidualTransformer, "length": LengthEstimator}
    return model_class[config.kind](config.model, config.tokens, config.text)


def load_tokenizer(run_dir: str | Path, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The trained tokenizer of ``run_dir`` (latest checkpoint), in eval mode."""
    config = read_run_config(run_dir, VQRunConfig)
    model = build_tokenizer(config.model)
    load_weights(model, latest_checkpoint(run_dir) / WEIGHTS)
    return model.to(device).eval()


def read_t2m_config(run_dir: str | Path, kind: str | None = None) -> T2MRunConfig:
    """The config of a text-to-motion run directory (of ``kind`` when given)."""
    return read_run_config(run_dir, *[T2M_CONFIGS[k] for k in ((kind,) if kind else T2M_KINDS)])


def check_text_encoder(spec: TextSpec, encoder, where: str) -> None:
    """Refuse features from any encoder other than the one the model was trained on."""
    if spec.learned:
        return
    if encoder is None or encoder.identity != spec.identity:
        given = "none" if encoder is None else encoder.identity
        raise UserError(f"{where} was trained on text encoder {spec.identity}, but {given} was given; use the "
                        f"same encoder and weights (--encoder {spec.name}, --clip-weights)")


def load_t2m_model(run_dir: str | Path, kind: str, device: torch.device | str = "cpu",
                   text_encoder=None) -> torch.nn.Module:
    """The model of the ``kind`` run ``run_dir`` (latest checkpoint), in eval mode; with a
    ``text_encoder``, check that it is the one the model was trained on."""
    config = read_t2m_config(run_dir, kind)
    if text_encoder is not None:
        check_text_encoder(config.text, text_encoder, str(run_dir))
    model = build_t2m_model(config)
    load_weights(model, latest_checkpoint(run_dir) / WEIGHTS)
    return model.to(device).eval()


def load_sampler(transformer_dir: str | Path, residual_dir: str | Path | None = None,
                 length_dir: str | Path | None = None, *, tokenizer_dir: str | Path | None = None,
                 text_encoder=None, clip_weights: str | None = None, device: torch.device | str = "cpu",
                 decode: bool = True, sampling: SamplingOverrides | None = None):
    """A `Sampler` from trained run directories, sampling with the models' stored settings changed
    by ``sampling``. The text encoder is built from the transformer's record (CLIP weights from
    ``clip_weights``/the usual places) unless given; the tokenizer is the one the transformer was
    trained with unless ``tokenizer_dir`` says otherwise, and must have the same fingerprint."""
    from k2m_core.t2m.sampler import Sampler
    from k2m_core.text import load_text_encoder

    config = read_t2m_config(transformer_dir, "transformer")
    if text_encoder is None and not config.text.learned:
        text_encoder = load_text_encoder(config.text.name, clip_weights)
    if text_encoder is not None:
        text_encoder = text_encoder.to(device)
    transformer = load_t2m_model(transformer_dir, "transformer", device, text_encoder)
    residual = load_t2m_model(residual_dir, "residual", device, text_encoder) if residual_dir else None
    length = load_t2m_model(length_dir, "length", device, text_encoder) if length_dir else None
    tokenizer = None
    if decode:
        tokenizer_dir = Path(tokenizer_dir or config.tokenizer)
        tokenizer = load_tokenizer(tokenizer_dir, device)
        if tokenizer_fingerprint(tokenizer) != config.tokens.tokenizer:
            raise UserError(f"{tokenizer_dir}: this tokenizer's weights differ from the ones {transformer_dir} was "
                            "trained on (fingerprint mismatch); pass the original with --tokenizer")
    return Sampler(transformer, residual, length, tokenizer, text_encoder, sampling=sampling)
