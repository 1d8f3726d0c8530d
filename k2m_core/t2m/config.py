"""Hyper-parameters of the text-to-motion models (paper §3.4, §5.1; docs/design.md#text-to-motion).

Each model's config carries what it needs to be rebuilt and used on its own: its sizes, the
tokens it models (`TokenSpec`, from the tokenizer), the text it reads (`TextSpec`) and its
sampling settings. Plain fields only, so a run's ``config.toml`` round-trips unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from k2m_core.errors import ConfigError, UserError

PRESET_NAMES = ("paper", "cpu", "tiny")


@dataclass
class TokenSpec:
    """The motion tokens: fixed by the tokenizer the token cache was built with."""
    tokenizer: str = ""  # fingerprint of the tokenizer (see k2m_core.t2m.tokens.tokenizer_fingerprint)
    codebook_size: int = 512
    num_quantizers: int = 6  # base layer + N residual layers
    downsample: int = 4  # frames per token
    max_tokens: int = 75  # longest sequence modelled: 10 s at 30 fps (paper §4); longer clips are cropped
    # The view the tokens were made in, from the dataset: "camera" (each clip as filmed) or "front"
    # (every clip turned to face the camera at its first frame, `k2m data front`): a model trained on
    # the latter generates facing the camera and any view is its motion turned (`k2m gen --view`).
    view: str = "camera"


@dataclass
class TextSpec:
    name: str = "clip"  # registry name (k2m_core.text.ENCODERS)
    identity: str = ""  # exact weights, e.g. "clip:ViT-B-32:3f2a…"; checked whenever features meet the model
    dim: int = 512  # feature size
    vocab: tuple[str, ...] = ()  # learned "words" encoder only: its vocabulary

    @property
    def learned(self) -> bool:
        return self.name == "words"


def _check_sampling(sampling) -> None:
    if not 0.0 <= sampling.top_k < 1.0:
        raise ConfigError("top_k", sampling.top_k, "must lie in [0, 1) (0 keeps every logit)")
    for key in ("temperature", "cfg_scale"):
        if not (math.isfinite(getattr(sampling, key)) and getattr(sampling, key) >= 0):
            raise ConfigError(key, getattr(sampling, key), "must be a non-negative number")


@dataclass
class MaskedSampling:
    steps: int = 10  # iterative unmasking steps
    cfg_scale: float = 4.0  # logits = uncond + s·(cond − uncond)
    top_k: float = 0.9  # keep the top (1 − top_k) share of logits (MoMask's threshold)
    temperature: float = 1.0  # 0 = greedy

    def validate(self) -> "MaskedSampling":
        if not self.steps >= 1:
            raise ConfigError("steps", self.steps, "must be at least 1")
        _check_sampling(self)
        return self


@dataclass
class ResidualSampling:
    cfg_scale: float = 5.0
    top_k: float = 0.9
    temperature: float = 1.0

    def validate(self) -> "ResidualSampling":
        _check_sampling(self)
        return self


@dataclass(frozen=True)
class SamplingOverrides:
    """Sampling settings chosen for one generation (`k2m gen`'s options); None keeps the model's
    own. Guidance has a scale per pass (MoMask's 4 and 5): ``cfg`` is the base layer's,
    ``residual_cfg`` the residual layers'; ``temperature`` and ``top_k`` apply to both passes."""
    steps: int | None = None
    cfg: float | None = None
    residual_cfg: float | None = None
    temperature: float | None = None
    top_k: float | None = None

    def validate(self) -> SamplingOverrides:
        """Refuse a setting no sampler can use, naming its `k2m gen` option."""
        if self.steps is not None and self.steps < 1:
            raise UserError(f"--steps {self.steps}: give at least 1 unmasking step")
        for option, value in (("--cfg", self.cfg), ("--residual-cfg", self.residual_cfg),
                              ("--temperature", self.temperature)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise UserError(f"{option} {value}: give a finite number ≥ 0")
        if self.top_k is not None and not 0.0 <= self.top_k < 1.0:
            raise UserError(f"--topk {self.top_k}: give a share in [0, 1) (0.9 keeps the top 10 % of logits, "
                            "0 keeps every logit)")
        return self

    def apply(self, masked: MaskedSampling, residual: ResidualSampling) -> tuple[MaskedSampling, ResidualSampling]:
        """The stored settings of both passes with these choices made."""
        self.validate()

        def given(**values) -> dict:
            return {k: v for k, v in values.items() if v is not None}

        both = given(temperature=self.temperature, top_k=self.top_k)
        return (replace(masked, **both, **given(steps=self.steps, cfg_scale=self.cfg)),
                replace(residual, **both, **given(cfg_scale=self.residual_cfg)))


@dataclass
class MaskedConfig:
    dim: int = 384
    layers: int = 6
    heads: int = 6
    ff_dim: int = 1024
    dropout: float = 0.2
    cond_drop: float = 0.1  # chance a training caption is dropped (classifier-free guidance)
    # Not in the paper: also condition on the view, the facing the tokens decode to at the window's
    # first token (`k2m_core.t2m.data.token_facings`); never dropped, so guidance contrasts the
    # caption alone. Camera-frame tokens carry the view, which no caption states; given it, "left"
    # is one thing in every clip. Generation then chooses the view (`k2m gen --view`; front).
    view_condition: bool = False
    sampling: MaskedSampling = field(default_factory=MaskedSampling)

    def validate(self) -> "MaskedConfig":
        _check_backbone(self)
        _validate_within(self.sampling, "sampling")
        return self


@dataclass
class ResidualConfig:
    dim: int = 384
    layers: int = 6
    heads: int = 6
    ff_dim: int = 1024
    dropout: float = 0.2
    cond_drop: float = 0.2
    sampling: ResidualSampling = field(default_factory=ResidualSampling)

    def validate(self) -> "ResidualConfig":
        _check_backbone(self)
        _validate_within(self.sampling, "sampling")
        return self


@dataclass
class LengthConfig:
    hidden: tuple[int, ...] = (512, 256, 128)
    dropout: float = 0.2

    def validate(self) -> "LengthConfig":
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError("hidden", self.hidden, "must be one or more positive layer sizes")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout", self.dropout, "must lie in [0, 1)")
        return self


def _validate_within(part, name: str) -> None:
    try:
        part.validate()
    except ConfigError as exc:
        raise exc.within(name) from None


def _check_backbone(config) -> None:
    for key in ("dim", "layers", "heads", "ff_dim"):
        if not getattr(config, key) >= 1:
            raise ConfigError(key, getattr(config, key), "must be at least 1")
    if config.dim % config.heads:
        raise ConfigError("dim", config.dim, f"must be divisible by heads = {config.heads}")
    for key in ("dropout", "cond_drop"):
        if not 0.0 <= getattr(config, key) < 1.0:
            raise ConfigError(key, getattr(config, key), "must lie in [0, 1)")


_BACKBONES = {
    "paper": dict(dim=384, layers=6, heads=6, ff_dim=1024, dropout=0.2),  # paper §5.1, FFN/dropout as MoMask
    "cpu": dict(dim=128, layers=3, heads=4, ff_dim=256, dropout=0.1),  # learns in minutes on 2 cores
    "tiny": dict(dim=32, layers=1, heads=2, ff_dim=64, dropout=0.0),  # tests
}
_LENGTHS = {"paper": LengthConfig(), "cpu": LengthConfig(hidden=(256, 128), dropout=0.1),
            "tiny": LengthConfig(hidden=(32,), dropout=0.0)}


def _known(name: str) -> None:
    if name not in PRESET_NAMES:
        raise UserError(f"--preset {name!r}: choose one of {', '.join(PRESET_NAMES)}")


def masked_preset(name: str, **overrides) -> MaskedConfig:
    _known(name)
    return replace(MaskedConfig(**_BACKBONES[name]), **overrides).validate()


def residual_preset(name: str, **overrides) -> ResidualConfig:
    _known(name)
    return replace(ResidualConfig(**_BACKBONES[name]), **overrides).validate()


def length_preset(name: str, **overrides) -> LengthConfig:
    _known(name)
    return replace(_LENGTHS[name], **overrides).validate()
