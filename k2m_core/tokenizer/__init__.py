"""The MotionVQ-Adapter tokenizer (paper §3.2–3.3, docs/design.md#tokenizer): 2D keypoints ↔ motion
tokens ↔ SMPL."""

from k2m_core.tokenizer.config import PRESETS, TokenizerConfig, preset
from k2m_core.tokenizer.model import MotionVQAdapter, SMPLMotion, TokenizerOutput

__all__ = ["PRESETS", "MotionVQAdapter", "SMPLMotion", "TokenizerConfig", "TokenizerOutput", "preset"]
