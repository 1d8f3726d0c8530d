"""Text-to-motion (paper §3.4): masked and residual transformers over motion tokens, a length
estimator, their caches in the dataset file, and the sampler behind `k2m gen`."""

from k2m_core.t2m.config import (LengthConfig, MaskedConfig, MaskedSampling, ResidualConfig, ResidualSampling,
                                 TextSpec, TokenSpec, length_preset, masked_preset, residual_preset)
from k2m_core.t2m.models import LengthEstimator, MaskedTransformer, ResidualTransformer, T2MOutput
from k2m_core.t2m.sampler import Generated, Sampler

__all__ = ["Generated", "LengthConfig", "LengthEstimator", "MaskedConfig", "MaskedSampling", "MaskedTransformer",
           "ResidualConfig", "ResidualSampling", "ResidualTransformer", "Sampler", "T2MOutput", "TextSpec",
           "TokenSpec", "length_preset", "masked_preset", "residual_preset"]
