"""Text → motion tokens → SMPL (paper §3.4 "Inference"; MoMask's generation, docs/design.md#ref-momask).

For a batch of prompts (each with its own length):

1. lengths: given in frames, or drawn from the length estimator's distribution;
2. base layer: start all-MASK; at step t of ``steps`` (t ∈ linspace(0, 1)) re-mask the
   round(cos(πt/2)·len) least confident of the tokens predicted last step (tokens fixed earlier
   are never re-masked) and predict them again, with classifier-free guidance
   ``uncond + s·(cond − uncond)``, top-k filtering and temperature;
3. residual layers 1…Q−1, one guided pass each;
4. the tokenizer decodes all layers to SMPL.

Guidance runs the conditional and the unconditional rows as one batch of 2B, and the text is
encoded once for all models. Every random draw comes from one ``torch.Generator``: a seed
reproduces the samples exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from k2m_core.errors import UserError
from k2m_core.t2m.config import MaskedSampling, ResidualSampling, SamplingOverrides
from k2m_core.t2m.models import LengthEstimator, MaskedTransformer, ResidualTransformer, padding_mask
from k2m_core.text import TextEncoder
from k2m_core.tokenizer.framing import CANONICAL_SIZE  # the camera generated motion is placed for



@dataclass
class Generated:
    codes: Tensor  # (B, T, Q) long, −1 past each motion's tokens (and in layers not generated)
    token_lengths: Tensor  # (B,) long
    frames: Tensor  # (B,) long: frames of each motion
    motion: object | None = None  # SMPLMotion of max(frames) frames (rows past their `frames` are padding)


def top_k_filter(logits: Tensor, top_k: float) -> Tensor:
    """Keep the ceil((1 − top_k)·K) largest logits (MoMask's threshold form), −inf elsewhere."""
    if top_k <= 0:
        return logits
    keep = max(1, math.ceil((1 - top_k) * logits.shape[-1]))
    kth = logits.topk(keep, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def sample_ids(logits: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    """Gumbel-max sampling at ``temperature`` (0 = argmax) over the last dimension."""
    if temperature <= 0:
        return logits.argmax(-1)
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-20, 1.0)
    return (logits / temperature - torch.log(-torch.log(uniform))).argmax(-1)


def _guided(run, cond: Tensor, null: Tensor, scale: float) -> Tensor:
    """``run(cond_rows, copies)`` → logits; cond and uncond in one batch of 2B unless s = 1."""
    if scale == 1.0:
        return run(cond, 1).float()
    both = run(torch.cat([cond, null]), 2).float()
    conditional, unconditional = both.chunk(2)
    return unconditional + scale * (conditional - unconditional)


@torch.no_grad()
def masked_tokens(model: MaskedTransformer, cond: Tensor, lengths: Tensor, settings: MaskedSampling,
                  generator: torch.Generator | None = None, facing: Tensor | None = None) -> Tensor:
    """Base-layer tokens ``(B, max(lengths))`` (−1 past each length) by iterative unmasking;
    ``facing (B,)`` is the view of a view-conditioned model (in ``cond`` already, and given to the
    unconditional pass too)."""
    batch, steps = len(lengths), int(lengths.max())
    pad = padding_mask(lengths, steps)
    ids = torch.full((batch, steps), model.mask_id, device=cond.device).masked_fill(pad, model.pad_id)
    scores = torch.zeros(batch, steps, device=cond.device).masked_fill(pad, float("inf"))
    null = model.null_condition(batch, facing).to(cond.dtype)

    def run(conds: Tensor, copies: int) -> Tensor:
        return model.logits(ids.repeat(copies, 1), conds, pad.repeat(copies, 1))

    for t in torch.linspace(0, 1, settings.steps).tolist():
        count = (math.cos(math.pi / 2 * t) * lengths).round().clamp_min(1)
        masked = scores.argsort(1).argsort(1) < count[:, None]  # the least confident
        ids = torch.where(masked, model.mask_id, ids)
        logits = _guided(run, cond, null, settings.cfg_scale)
        sampled = sample_ids(top_k_filter(logits, settings.top_k), settings.temperature, generator)
        ids = torch.where(masked, sampled, ids)
        confidence = logits.softmax(-1).gather(-1, sampled[..., None])[..., 0]
        scores = confidence.masked_fill(~masked, float("inf"))  # fixed tokens stay fixed
    return ids.masked_fill(pad, -1)


@torch.no_grad()
def residual_tokens(model: ResidualTransformer, cond: Tensor, base: Tensor, lengths: Tensor,
                    settings: ResidualSampling, layers: int | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
    """All layers ``(B, T, Q)`` from the base layer ``(B, T)``; layers past ``layers`` stay −1."""
    batch, steps = base.shape
    num_quantizers = model.tokens.num_quantizers
    layers = num_quantizers - 1 if layers is None else min(layers, num_quantizers - 1)
    pad = padding_mask(lengths, steps)
    codes = torch.full((batch, steps, num_quantizers), -1, dtype=torch.long, device=base.device)
    codes[..., 0] = base
    null = model.null_condition(batch).to(cond.dtype)
    for j in range(1, layers + 1):
        layer = torch.full((batch,), j, dtype=torch.long, device=base.device)

        def run(conds: Tensor, copies: int) -> Tensor:
            return model.logits(codes.repeat(copies, 1, 1), layer.repeat(copies), conds, pad.repeat(copies, 1))

        logits = _guided(run, cond, null, settings.cfg_scale)
        sampled = sample_ids(top_k_filter(logits, settings.top_k), settings.temperature, generator)
        codes[..., j] = sampled.masked_fill(pad, -1)
    return codes


class Sampler:
    """Prompts → token layers → SMPL with trained models; powers `k2m gen`.

    ``text_encoder`` is the frozen encoder the models were trained on (checked by identity); models
    with a learned encoder carry their own. ``sampling`` changes the models' stored sampling
    settings (checked here); ``residual_layers`` limits how many residual layers are generated."""

    def __init__(self, transformer: MaskedTransformer, residual: ResidualTransformer | None = None,
                 length: LengthEstimator | None = None, tokenizer=None, text_encoder: TextEncoder | None = None,
                 *, sampling: SamplingOverrides | None = None, residual_layers: int | None = None) -> None:
        self.transformer, self.residual, self.length = transformer.eval(), residual, length
        self.tokenizer, self.text_encoder = tokenizer, text_encoder
        stored = residual.config.sampling if residual is not None else ResidualSampling()
        self.masked_settings, self.residual_settings = (sampling or SamplingOverrides()).apply(
            transformer.config.sampling, stored)
        self.residual_layers = residual_layers
        self.tokens = transformer.tokens
        for model in self.models:
            model.eval()
            spec = model.text_spec
            if not spec.learned and (text_encoder is None or text_encoder.identity != spec.identity):
                given = text_encoder.identity if text_encoder is not None else "none"
                raise UserError(f"the {type(model).__name__} was trained on text encoder {spec.identity}, but "
                                f"{given} was given; use the same encoder and weights (--clip-weights)")
            if model.tokens.tokenizer != self.tokens.tokenizer:
                raise UserError(f"the {type(model).__name__} was trained on tokens of tokenizer "
                                f"{model.tokens.tokenizer}, the transformer on {self.tokens.tokenizer}")
            if model.tokens.view != self.tokens.view:
                raise UserError(f"the {type(model).__name__} was trained on tokens of the {model.tokens.view} view, "
                                f"the transformer on the {self.tokens.view} view; train all three on one dataset")

    @property
    def models(self) -> list[torch.nn.Module]:
        return [m for m in (self.transformer, self.residual, self.length) if m is not None]

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def max_frames(self) -> int:
        return self.tokens.max_tokens * self.tokens.downsample

    def text_input(self, model: torch.nn.Module, prompts: list[str], memo: dict | None = None) -> Tensor:
        """``model``'s input for ``prompts``: frozen features ``(B, D)`` or its own word ids ``(B, L)``,
        computed once per ``memo`` (one batch of prompts shared by the models)."""
        memo = {} if memo is None else memo
        spec = model.text_spec
        if spec.learned:
            key = spec.identity
            if key not in memo:
                memo[key] = model.text.words.tokenize(prompts).to(self.device)
        else:
            key = "frozen"
            if key not in memo:
                memo[key] = self.text_encoder.encode(prompts).to(self.device)
        return memo[key]

    def token_lengths(self, frames: list[int] | Tensor) -> Tensor:
        frames = torch.as_tensor(frames, dtype=torch.long, device=self.device)
        if bool((frames < 1).any()) or bool((frames > self.max_frames).any()):
            raise UserError(f"--frames must lie in 1…{self.max_frames} (the models know motions up to "
                            f"{self.tokens.max_tokens} tokens of {self.tokens.downsample} frames)")
        return (frames + self.tokens.downsample - 1) // self.tokens.downsample

    @torch.no_grad()
    def sample_lengths(self, prompts: list[str], generator: torch.Generator | None = None,
                       memo: dict | None = None) -> Tensor:
        """Token lengths ``(B,)`` drawn from the length estimator."""
        if self.length is None:
            raise UserError("no length estimator: give the lengths (--frames) or train one with `k2m train length`")
        text = self.text_input(self.length, prompts, memo)
        probs = self.length.logits(text).softmax(-1)
        return torch.multinomial(probs, 1, generator=generator)[:, 0]

    @property
    def takes_view(self) -> bool:
        """Whether a view can be chosen: tokens made in the front view (the motion is turned),
        body-frame tokens, or a view-conditioned transformer."""
        return (self.tokens.view == "front" or self.transformer.view is not None
                or getattr(self.tokenizer, "view_head", None) is not None)

    @torch.no_grad()
    def sample_tokens(self, prompts: list[str], token_lengths: Tensor, generator: torch.Generator | None = None,
                      memo: dict | None = None, facing: Tensor | None = None) -> Tensor:
        """Token layers ``(B, max(lengths), Q)``, −1 past each length and in layers not generated;
        ``facing (B,)`` radians is the view a view-conditioned transformer generates for (None: 0,
        facing the camera)."""
        memo = {} if memo is None else memo
        token_lengths = token_lengths.to(self.device)
        if self.transformer.view is not None and facing is None:
            facing = torch.zeros(len(prompts), device=self.device)
        cond = self.transformer.condition(self.text_input(self.transformer, prompts, memo), facing=facing)
        base = masked_tokens(self.transformer, cond, token_lengths, self.masked_settings, generator, facing)
        if self.residual is None or self.residual_layers == 0:
            codes = torch.full(base.shape + (self.tokens.num_quantizers,), -1, dtype=torch.long, device=base.device)
            codes[..., 0] = base
            return codes
        cond = self.residual.condition(self.text_input(self.residual, prompts, memo))
        return residual_tokens(self.residual, cond, base, token_lengths, self.residual_settings,
                               self.residual_layers, generator)

    @torch.no_grad()
    def generate(self, prompts: list[str], frames: list[int] | Tensor | None = None, *, seed: int = 0,
                 decode: bool = True, size: tuple[float, float] = CANONICAL_SIZE,
                 yaw: Tensor | None = None) -> Generated:
        """Motions for ``prompts`` of ``frames`` frames each (None: lengths from the estimator);
        ``yaw (B,)`` radians is the view (`k2m_core.generate.view_yaw`; None: the front): the
        decoded motion turned (tokens made in the front view), of body-frame tokens
        (`MotionVQAdapter.decode`), or the one a view-conditioned transformer generates for."""
        prompts = list(prompts)
        generator = torch.Generator(self.device).manual_seed(seed)
        memo: dict = {}
        if frames is None:
            token_lengths = self.sample_lengths(prompts, generator, memo)
            frames_t = token_lengths * self.tokens.downsample
        else:
            frames_t = torch.as_tensor(frames, dtype=torch.long, device=self.device).reshape(-1)
            if len(frames_t) == 1 and len(prompts) > 1:
                frames_t = frames_t.expand(len(prompts))
            if len(frames_t) != len(prompts):
                raise UserError(f"{len(frames_t)} lengths for {len(prompts)} prompts")
            token_lengths = self.token_lengths(frames_t)
        if yaw is not None:
            yaw = torch.as_tensor(yaw, dtype=torch.float32, device=self.device).expand(len(prompts))
        codes = self.sample_tokens(prompts, token_lengths, generator, memo,
                                   facing=yaw if self.transformer.view is not None else None)
        motion = None
        if decode:
            if self.tokenizer is None:
                raise UserError("decoding to SMPL needs the tokenizer (--tokenizer RUN_DIR)")
            body_yaw = yaw if self.tokenizer.view_head is not None else None
            motion = self.tokenizer.decode(codes, size[0], size[1], lengths=frames_t, yaw=body_yaw)
            if yaw is not None and self.tokens.view == "front":
                from k2m_core.tokenizer.front import turn_motion

                motion = turn_motion(motion, yaw, self.tokenizer.body)
        return Generated(codes=codes, token_lengths=token_lengths, frames=frames_t, motion=motion)
