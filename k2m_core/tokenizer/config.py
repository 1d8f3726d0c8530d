"""Hyper-parameters of the MotionVQ-Adapter (docs/design.md#tokenizer, paper §3.2–3.3 and A.4).

Plain ``str``/``int``/``float`` fields only, so a resolved config round-trips through TOML
(`config.toml` of a run directory) unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from k2m_core.errors import ConfigError, UserError

ADAPTERS = ("dstformer", "none")
FRAMINGS = ("canonical", "source")
FOCAL_SOURCES = ("dataset", "paper")
TOKEN_FRAMES = ("camera", "body")


@dataclass
class TokenizerConfig:
    # Adapter (DSTformer, docs/design.md#ref-dstformer; paper §5.1: depth 1, 8 heads, feature 512, embedding 512).
    adapter: str = "dstformer"  # "dstformer" | "none" (MoMask's plain conv encoder, paper Table 5b)
    adapter_depth: int = 1
    adapter_heads: int = 8
    adapter_dim: int = 512
    adapter_rep: int = 512
    adapter_mlp_ratio: float = 2.0  # MotionBERT's released configs use 2
    adapter_maxlen: int = 512  # longest clip (frames, after padding to a multiple of `downsample`)

    # Not in the paper: each clip is moved into one standard shot before encoding (k2m_core.tokenizer.framing),
    # so codes describe motion, not where the person stood; "source" keeps the video's framing (the paper).
    framing: str = "canonical"
    # Whose camera the losses project with: "dataset" = each clip's own focal length (Dataset.focals,
    # carried through the framing exactly); "paper" = f = 5000 px about the image centre of the
    # frame the model works in, whatever the data (the paper, and models trained before k2m 0.x had it).
    focal_source: str = "dataset"
    # What the codes describe: "camera" = the motion as the camera saw it, facing and root per frame
    # in the camera frame (the paper); "body" = turns, steps and height, summed into the motion in
    # its own frame (first-frame facing fixed, root travel from the first frame), with a per-clip
    # continuous view, never quantised, placing it before the camera for the losses
    # (k2m_core.tokenizer.bodyframe).
    tokens: str = "camera"
    # Not in the paper: in training, each window's canonical scale is multiplied by exp(u), u uniform
    # in ±framing_jitter (the camera follows exactly, so the 3D is unchanged). Canonical framing
    # gives every window the same torso size, and a decoder trained on that learns to ignore the
    # input's size: walks towards the camera decode at constant depth. The jitter makes it read
    # the size (k2m-mini model card, "What stops the travel": camera-axis travel 0.15 → 0.69 of the
    # truth at 2,400 steps; it cost 36 mm of PA-MPJPE at 1,200 steps, 3 mm at 2,400). 0 turns it off.
    framing_jitter: float = 0.0

    # Conv encoder/decoder (MoMask RVQ-VAE, docs/design.md#ref-momask).
    width: int = 512
    downsample: int = 4  # α: a power of two, one stride-2 stage per factor of 2
    resnet_depth: int = 3
    dilation_growth: int = 3
    dropout: float = 0.2  # inside residual blocks

    # Residual quantiser: num_quantizers = N + 1 layers, each with its own codebook.
    num_quantizers: int = 6
    codebook_size: int = 512
    code_dim: int = 512
    ema_decay: float = 0.99
    quantizer_dropout: float = 0.2

    # Supervision (paper §3.3, weights from A.4).
    conf_threshold: float = 0.8
    lambda_rvq: float = 0.02
    lambda_rec: float = 0.02
    lambda_smooth: float = 1e-4
    lambda_vel: float = 0.02
    lambda_boundary: float = 5e-4
    lambda_pose: float = 10.0
    lambda_shape: float = 1.0
    shape_tau: float = 0.5  # L_shape is free while 0.1·Σ|β| ≤ τ, i.e. Σ|β| ≤ 5
    # Not in the paper, for the root depth that 2D barely constrains (0 and 0 give the paper's model):
    lambda_depth: float = 2.0  # prior against depth changes (losses.depth_speed_loss)
    depth_smoothing: float = 3.0  # σ in frames of the Gaussian low-pass on the decoded depth
    # Not in the paper: a side view fits two facings almost equally well in 2D, and a decoder trained
    # from scratch settles all of them on one side. Each training clip is also decoded mirrored and
    # mirrored back; where that twin fits the clip's 2D better (error below mirror_margin × the clip's
    # own), the decoded joints are pulled towards it (losses.mirror_pull_loss, metres). 0 turns it off.
    lambda_mirror: float = 0.0
    mirror_margin: float = 0.9
    # Not in the paper: a 2D pose prior from random views (k2m_core.tokenizer.views). Each decoded body
    # is turned to a random azimuth (elevation within ±view_elevation_deg) and projected; lambda_prior
    # weighs the tokenizer's term against a discriminator trained on the dataset's own 2D poses.
    # 0 (with the other extras off and focal_source = "paper") gives the paper's objective.
    lambda_prior: float = 0.0
    view_elevation_deg: float = 15.0

    body_model: str = "skeleton"
    window: int = 64  # training window in frames (MoMask: random 64-frame windows)

    @property
    def down_stages(self) -> int:
        return self.downsample.bit_length() - 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TokenizerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"tokenizer config: unknown key(s) {', '.join(unknown)}; "
                            f"known keys are {', '.join(sorted(known))}")
        return cls(**values).validate()

    def validate(self) -> "TokenizerConfig":
        def bad(key, why):
            raise ConfigError(key, getattr(self, key), why)

        if self.adapter not in ADAPTERS:
            bad("adapter", f"must be one of {', '.join(ADAPTERS)}")
        if self.framing not in FRAMINGS:
            bad("framing", f"must be one of {', '.join(FRAMINGS)}")
        if self.focal_source not in FOCAL_SOURCES:
            bad("focal_source", f"must be one of {', '.join(FOCAL_SOURCES)}")
        if self.tokens not in TOKEN_FRAMES:
            bad("tokens", f"must be one of {', '.join(TOKEN_FRAMES)}")
        if self.downsample < 1 or self.downsample & (self.downsample - 1):
            bad("downsample", "must be a power of two (1, 2, 4, …)")
        for key in ("adapter_depth", "adapter_heads", "adapter_dim", "adapter_rep", "adapter_maxlen", "width",
                    "num_quantizers", "codebook_size", "code_dim", "window"):
            if not getattr(self, key) >= 1:
                bad(key, "must be at least 1")
        if self.adapter_dim % self.adapter_heads:
            bad("adapter_dim", f"must be divisible by adapter_heads = {self.adapter_heads}")
        if self.adapter_maxlen % self.downsample:
            bad("adapter_maxlen", f"must be a multiple of downsample = {self.downsample}")
        if not 0.0 < self.ema_decay < 1.0:
            bad("ema_decay", "must lie in (0, 1)")
        if not 0.0 < self.mirror_margin <= 1.0:
            bad("mirror_margin", "must lie in (0, 1]")
        if not 0.0 <= self.view_elevation_deg <= 90.0:
            bad("view_elevation_deg", "must lie in [0, 90]")
        if not 0.0 <= self.framing_jitter <= 1.0:
            bad("framing_jitter", "must lie in [0, 1] (a log-scale half-width; 0 turns it off)")
        if not self.depth_smoothing >= 0:
            bad("depth_smoothing", "must be non-negative (0 turns the filter off)")
        for key in ("quantizer_dropout", "dropout", "conf_threshold"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                bad(key, "must lie in [0, 1]")
        for f in fields(self):
            if f.name.startswith("lambda_") and not getattr(self, f.name) >= 0:
                bad(f.name, "must be non-negative")
        return self


RECIPE = dict(lambda_prior=0.1, lambda_mirror=2.0, conf_threshold=0.5, framing_jitter=0.25)

PRESETS: dict[str, TokenizerConfig] = {
    # The paper's sizes (§5.1, docs/design.md#ref-momask), with the measured recipe for 3D (k2m-mini model card, "3D from 2D"): the
    # 2D pose prior, the mirror pull, the far side of the body counted (confidence ≥ 0.5) and the framing jitter.
    "paper": TokenizerConfig(**RECIPE),
    # Learns in minutes on a 2-core CPU.
    # The adapter's cost grows with 17 tokens per frame × dim², hence its small dimension.
    "cpu": TokenizerConfig(adapter_heads=4, adapter_dim=64, adapter_rep=32, width=192, code_dim=128,
                           codebook_size=256, dropout=0.1, **RECIPE),
    # For tests: a forward+backward at batch 4 × 32 frames takes a few tens of milliseconds.
    "tiny": TokenizerConfig(adapter_heads=4, adapter_dim=32, adapter_rep=16, adapter_maxlen=128,
                            width=32, resnet_depth=2, num_quantizers=2, codebook_size=32, code_dim=32,
                            dropout=0.0, window=32),
}


def preset(name: str, **overrides) -> TokenizerConfig:
    """A copy of ``PRESETS[name]`` with ``overrides`` applied, validated."""
    if name not in PRESETS:
        raise UserError(f"--preset {name!r}: choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides).validate()
