"""Text → SMPL generation speed: k2m's batched sampler vs MoMask's one-prompt-at-a-time approach.

    python benchmarks/sample.py [--repeats 3] [--devices cpu,cuda]

Both paths run the same randomly initialised paper-sized models (masked and residual transformer
6 layers × 6 heads × 384, CLIP ViT-B/32 text tower, MotionVQ-Adapter `paper` tokenizer with 6
quantiser layers) on the same prompts and lengths (drawn once, 2–10 s), and do the same work:
10 unmasking steps with classifier-free guidance (scale 4), all 5 residual layers (scale 5),
top-k 0.9, temperature 1, decoding to SMPL.

- **reference** (MoMask's generate): one prompt at a time; CLIP encodes the prompt over its full
  77-token context once in the masked and again in the residual transformer; every guided step is
  two forward passes, conditional then unconditional; each motion is decoded alone.
- **k2m**: `k2m_core.t2m.Sampler` — the whole batch of prompts at once (padding masks for their
  different lengths), the text encoded once (cut to the longest prompt, exact under CLIP's causal
  mask), conditional and unconditional rows in one forward pass, one batched decode.

Latency is seconds per prompt at batch 1; throughput is prompts per second at batch 32. Each
figure is the median of ``--repeats`` timings, alternating between the two paths.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

from k2m_core.body.skeleton import SkeletonBody
from k2m_core.t2m.config import MaskedSampling, ResidualSampling, TextSpec, masked_preset, residual_preset
from k2m_core.t2m.tokens import token_spec
from k2m_core.t2m.models import MaskedTransformer, ResidualTransformer
from k2m_core.t2m.sampler import CANONICAL_SIZE, Sampler, sample_ids, top_k_filter
from k2m_core.text.clip import ClipEncoder
from k2m_core.tokenizer import MotionVQAdapter, preset

PROMPTS = ["a person walks forward and turns left", "someone jumps twice", "a man waves with his right hand",
           "a woman runs in a circle", "a person kicks with the left leg", "someone bends down to pick something up",
           "a person dances happily", "a man sits down on a chair"]
TARGETS = {1: 1.8, 32: 10.0}  # required speed-up at batch 1 (latency) and 32 (throughput per prompt)


@torch.no_grad()
def reference_generate(prompt: str, frames: int, transformer, residual, tokenizer, clip: ClipEncoder,
                       masked: MaskedSampling, res: ResidualSampling, generator: torch.Generator):
    """MoMask's generation for one prompt: separate cond/uncond passes, text encoded per model."""
    device = next(transformer.parameters()).device

    def encode_full_context():
        return clip.clip.encode_text(clip._tokenizer([prompt]).to(device)).float()

    def guided(forward, cond, null, scale):
        conditional, unconditional = forward(cond).float(), forward(null).float()
        return unconditional + scale * (conditional - unconditional)

    length = math.ceil(frames / tokenizer.downsample)
    lengths = torch.tensor([length], device=device)
    pad = torch.zeros(1, length, dtype=torch.bool, device=device)
    cond, null = transformer.condition(encode_full_context()), transformer.null_condition(1)
    ids = torch.full((1, length), transformer.mask_id, device=device)
    scores = torch.zeros(1, length, device=device)
    for t in torch.linspace(0, 1, masked.steps).tolist():
        count = (math.cos(math.pi / 2 * t) * lengths).round().clamp_min(1)
        is_masked = scores.argsort(1).argsort(1) < count[:, None]
        ids = torch.where(is_masked, transformer.mask_id, ids)
        logits = guided(lambda c: transformer.logits(ids, c, pad), cond, null, masked.cfg_scale)
        sampled = sample_ids(top_k_filter(logits, masked.top_k), masked.temperature, generator)
        ids = torch.where(is_masked, sampled, ids)
        scores = logits.softmax(-1).gather(-1, sampled[..., None])[..., 0].masked_fill(~is_masked, float("inf"))
    codes = torch.full((1, length, residual.tokens.num_quantizers), -1, dtype=torch.long, device=device)
    codes[..., 0] = ids
    cond, null = residual.condition(encode_full_context()), residual.null_condition(1)
    for j in range(1, residual.tokens.num_quantizers):
        layer = torch.tensor([j], device=device)
        logits = guided(lambda c: residual.logits(codes, layer, c, pad), cond, null, res.cfg_scale)
        codes[..., j] = sample_ids(top_k_filter(logits, res.top_k), res.temperature, generator)
    return tokenizer.decode(codes, *CANONICAL_SIZE, lengths=torch.tensor([frames], device=device))


def build(device: torch.device):
    torch.manual_seed(0)
    clip = ClipEncoder.random(seed=0).to(device)
    tokenizer = MotionVQAdapter(preset("paper"), SkeletonBody()).eval()
    with torch.no_grad():  # random codebooks (an untrained one is all zeros)
        for layer in tokenizer.quantizer.layers:
            layer.embed.normal_()
    tokenizer = tokenizer.to(device)
    tokens = token_spec(tokenizer)
    text = TextSpec(name="clip-random", identity=clip.identity, dim=clip.dim)
    transformer = MaskedTransformer(masked_preset("paper"), tokens, text).to(device).eval()
    residual = ResidualTransformer(residual_preset("paper"), tokens, text).to(device).eval()
    return clip, tokenizer, transformer, residual


def median_seconds(fns: dict, repeats: int, device: torch.device) -> dict[str, float]:
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for fn in fns.values():  # warm-up
        fn()
    sync()
    timings: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            timings[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", default="cpu,cuda")
    args = parser.parse_args()
    devices = [torch.device(d) for d in args.devices.split(",") if d == "cpu" or torch.cuda.is_available()]
    rng = np.random.default_rng(0)
    rows = []
    for device in devices:
        clip, tokenizer, transformer, residual = build(device)
        sampler = Sampler(transformer, residual, None, tokenizer, clip)
        for batch in TARGETS:
            prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
            frames = rng.integers(60, 301, size=batch).tolist()  # 2–10 s at 30 fps

            def ours():
                sampler.generate(prompts, frames, seed=0)

            def reference():
                generator = torch.Generator(device).manual_seed(0)
                for prompt, length in zip(prompts, frames):
                    reference_generate(prompt, length, transformer, residual, tokenizer, clip,
                                       sampler.masked_settings, sampler.residual_settings, generator)

            seconds = median_seconds({"reference": reference, "k2m": ours}, args.repeats, device)
            speedup = seconds["reference"] / seconds["k2m"]
            for name in ("reference", "k2m"):
                rows.append((device.type, batch, name, seconds[name] / batch, batch / seconds[name],
                             f"{speedup:.2f}× (target ≥ {TARGETS[batch]}×)" if name == "k2m" else ""))
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"{torch.get_num_threads()} CPU threads"
    print(f"torch {torch.__version__}, {name}; lengths 60–300 frames, 10 steps, CFG 4 / 5, "
          "5 residual layers, decode to SMPL")
    print("| device | batch | method | s / prompt | prompts / s | speed-up |")
    print("|---|---|---|---|---|---|")
    for device, batch, method, per_prompt, rate, speedup in rows:
        print(f"| {device} | {batch} | {method} | {per_prompt:.4f} | {rate:.2f} | {speedup} |")


if __name__ == "__main__":
    main()
