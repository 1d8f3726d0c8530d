"""CLIP ViT-B/32's text tower through `open_clip` (the paper's text encoder, docs/design.md#text-to-motion).

Weights are OpenAI's ViT-B/32 (open_clip tag ``openai``), found in this order:

1. ``--clip-weights PATH`` (the ``weights`` argument);
2. the ``K2M_CLIP_WEIGHTS`` environment variable;
3. open_clip's download cache (Hugging Face hub cache, or ``~/.cache/clip`` for the URL download).

k2m never downloads: offline with none of these is one `UserError` naming all three. `random`
builds the same architecture randomly initialised (tests, benchmarks).

Only the text tower is kept. Features are the projected embedding of the end-of-text token, as
open_clip's ``encode_text`` (not normalised, as MoMask uses them). Because CLIP's text attention is
causal and reads out at the end-of-text token, positions after it cannot change the feature: each
batch is cut to its longest prompt instead of running all 77 positions (exact, ~5× less work).
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from pathlib import Path

import torch
from torch import Tensor

from k2m_core.errors import UserError
from k2m_core.text.base import TextEncoder, fingerprint

MODEL_NAME = "ViT-B-32"
PRETRAINED_TAG = "openai"
WEIGHTS_ENV = "K2M_CLIP_WEIGHTS"
_HF_REPO = "timm/vit_base_patch32_clip_224.openai"
_HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_URL_CACHE_FILE = Path("~/.cache/clip/ViT-B-32.pt")


def import_open_clip():
    """``import open_clip``, also where torchvision's compiled ops cannot load.

    PyPI's Linux torchvision wheels are CUDA builds; beside a CPU-only torch their C++ ops fail to
    load, and torchvision's import then stops at registering fake kernels for ``nms``/``qnms``.
    open_clip needs none of those ops (only image transforms), so when that is the failure we
    declare the two op schemas and import again; calling ``torchvision.ops.nms`` would still fail."""
    try:
        import open_clip
        return open_clip
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
    for module in [m for m in sys.modules if m == "torchvision" or m.startswith(("torchvision.", "open_clip"))]:
        del sys.modules[module]
    library = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import_open_clip._library = library  # keep the schema definitions alive
    import open_clip
    return open_clip


def _cached_weights() -> Path | None:
    """OpenAI ViT-B/32 weights already in open_clip's download cache, without touching the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # open_clip works without the hub; then only the URL cache exists
        try_to_load_from_cache = None
    if try_to_load_from_cache is not None:
        for filename in _HF_FILES:
            found = try_to_load_from_cache(_HF_REPO, filename)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    url_cache = _URL_CACHE_FILE.expanduser()
    return url_cache if url_cache.is_file() else None


def resolve_weights(weights: str | os.PathLike | None = None) -> Path:
    """Where CLIP's weights are, by the order in the module docstring; a `UserError` if nowhere."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(f"--clip-weights {weights}: no such file; give the path of OpenAI's CLIP ViT-B/32 "
                            f"weights (e.g. open_clip_model.safetensors)")
        return path
    if os.environ.get(WEIGHTS_ENV):
        path = Path(os.environ[WEIGHTS_ENV]).expanduser()
        if not path.is_file():
            raise UserError(f"{WEIGHTS_ENV}={path}: no such file; point it at OpenAI's CLIP ViT-B/32 weights")
        return path
    cached = _cached_weights()
    if cached is not None:
        return cached
    raise UserError(
        "CLIP ViT-B/32 weights not found, and k2m does not download them. Provide them one of three ways: "
        f"--clip-weights PATH; the {WEIGHTS_ENV} environment variable; or open_clip's download cache, filled "
        "on a machine with internet by: python -c \"import open_clip; "
        f"open_clip.create_model('{MODEL_NAME}', pretrained='{PRETRAINED_TAG}')\" "
        "(copy ~/.cache/huggingface to this machine). Or train with the offline --encoder words.")


def _create_random(seed: int):
    open_clip = import_open_clip()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # open_clip warns that no weights were loaded: that is the point here
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # OpenAI's weights were trained with QuickGELU; open_clip's plain 'ViT-B-32' uses GELU.
            return open_clip.create_model(MODEL_NAME, pretrained=None, force_quick_gelu=True)
    finally:
        root.setLevel(level)


def _read_state_dict(path: Path) -> dict:
    """Tensors of a weights file: safetensors, or a torch state dict read with ``weights_only`` (no
    pickled code runs). A TorchScript archive (OpenAI's own ``ViT-B-32.pt``) is a program, not
    data: it is refused, with the one-line conversion for those who trust it."""
    import zipfile

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if any("/code/" in name for name in archive.namelist()):
                    raise UserError(
                        f"{path}: a TorchScript archive, which holds code; k2m loads weights only. If you trust the "
                        "file, convert it once: python -c \"import torch, safetensors.torch as st; st.save_file({k: "
                        f"v.contiguous() for k, v in torch.jit.load('{path}').state_dict().items()}}, "
                        "'ViT-B-32.safetensors')\" and pass --clip-weights ViT-B-32.safetensors")
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        else:
            try:
                state = load_file(str(path))
            except SafetensorError:  # not safetensors: a torch file in the old (non-zip) format
                state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" in str(exc).lower():  # weights_only refused an object: loading it could run code
            raise UserError(f"{path}: holds Python objects besides tensors; k2m reads only weights (safetensors or "
                            "torch state dicts)") from None
        raise UserError(f"{path}: cannot read weights from it (not a weights file)") from None
    except (OSError, RuntimeError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: cannot read weights from it ({type(exc).__name__}: {str(exc)[:160]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: not a state dict of tensors; k2m reads safetensors or torch state dicts")
    return {k.removeprefix("module."): v for k, v in state.items()}


class ClipEncoder(TextEncoder):
    name = "clip"
    dim = 512

    def __init__(self, clip_model, source: str) -> None:
        super().__init__()
        self.clip = clip_model
        self.clip.visual = None  # the image tower is never used: free its 88 M parameters
        self.source = source  # where the weights came from (a path, or "random(seed)")
        open_clip = import_open_clip()
        self._tokenizer = open_clip.get_tokenizer(MODEL_NAME)
        self.requires_grad_(False)
        self.eval()
        self._identity = f"{self.name}:{MODEL_NAME}:" + fingerprint(self.clip.text_projection,
                                                                    self.clip.positional_embedding)

    @property
    def identity(self) -> str:
        return self._identity

    @classmethod
    def from_weights(cls, weights: str | os.PathLike | None = None) -> "ClipEncoder":
        path = resolve_weights(weights)
        model = _create_random(seed=0)
        wanted = {k: v for k, v in model.state_dict().items() if not k.startswith("visual.")}
        state = {k: v for k, v in _read_state_dict(path).items() if k in wanted}
        missing = sorted(set(wanted) - set(state))
        if missing:
            raise UserError(f"{path}: not CLIP ViT-B/32 weights (missing {', '.join(missing[:3])}…); give "
                            "open_clip's open_clip_model.safetensors or open_clip_pytorch_model.bin for ViT-B-32 "
                            "(openai)")
        bad = [k for k, v in state.items() if v.shape != wanted[k].shape]
        if bad:
            raise UserError(f"{path}: {bad[0]} has shape {tuple(state[bad[0]].shape)}, CLIP ViT-B/32 needs "
                            f"{tuple(wanted[bad[0]].shape)}: weights of another model")
        model.load_state_dict(state, strict=False)  # the image tower is dropped, so it stays random
        return cls(model, str(path))

    @classmethod
    def random(cls, seed: int = 0) -> "ClipEncoder":
        """The same architecture, randomly initialised from ``seed`` (for tests and benchmarks)."""
        return cls(_create_random(seed), f"random({seed})")

    def tokenize(self, texts: list[str]) -> Tensor:
        tokens = self._tokenizer(list(texts))  # (N, 77), zero-padded after the end-of-text token
        used = int((tokens != 0).sum(-1).max()) if len(tokens) else 1
        return tokens[:, :max(used, 1)]

    def forward(self, tokens: Tensor) -> Tensor:
        clip, length = self.clip, tokens.shape[1]
        x = clip.token_embedding(tokens) + clip.positional_embedding[:length]
        x = clip.transformer(x, attn_mask=clip.attn_mask[:length, :length])
        x = clip.ln_final(x)
        x = x[torch.arange(len(tokens), device=tokens.device), tokens.argmax(dim=-1)]  # end-of-text token
        projection = clip.text_projection
        return projection(x) if isinstance(projection, torch.nn.Module) else x @ projection
