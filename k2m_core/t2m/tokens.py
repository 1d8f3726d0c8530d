"""The motion tokens a tokenizer makes: its fingerprint, and the `TokenSpec` the text-to-motion
models record so that they never meet tokens of another tokenizer."""

from __future__ import annotations

import hashlib

import torch

from k2m_core.t2m.config import TokenSpec

# Config keys that never change the codes of a trained tokenizer (losses, dropout, EMA, windows, and
# the camera the decoder projects with), so a new loss weight must not invalidate its caches and models.
_TRAINING_ONLY = ("shape_tau", "mirror_margin", "window", "dropout", "quantizer_dropout", "ema_decay",
                  "focal_source", "view_elevation_deg", "framing_jitter")
# Keys added after tokenizers were trained and shipped, with the value that decodes as those did:
# at that value they hash as if absent, so older fingerprints (and the models trained on them) hold.
_ADDED_LATER = {"tokens": "camera"}


def tokenizer_fingerprint(tokenizer: torch.nn.Module) -> str:
    """Hash of the tokenizer's architecture config and weights (codebooks included): equal codes,
    equal hash."""
    config = {k: v for k, v in tokenizer.config.to_dict().items()
              if k not in _TRAINING_ONLY and not k.startswith("lambda_") and _ADDED_LATER.get(k, ...) != v}
    digest = hashlib.sha256(repr(sorted(config.items())).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]



def token_spec(tokenizer: torch.nn.Module, max_tokens: int = 75) -> TokenSpec:
    config = tokenizer.config
    return TokenSpec(tokenizer=tokenizer_fingerprint(tokenizer), codebook_size=config.codebook_size,
                     num_quantizers=config.num_quantizers, downsample=config.downsample, max_tokens=max_tokens)
