"""θ_min/θ_max of L_pose (paper eq. 8), shipped as package data (``pose_limits.json``).

See `k2m_core.tokenizer.derive_pose_limits` for how they were derived; the file's ``provenance``
field says the same in one paragraph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import torch
from torch import Tensor


@dataclass(frozen=True)
class PoseLimits:
    theta_min: Tensor  # (23, 3) radians, axis-angle components of the body joints
    theta_max: Tensor  # (23, 3)
    joints: tuple[str, ...]
    provenance: str


def load_pose_limits() -> PoseLimits:
    data = json.loads(resources.files(__package__).joinpath("pose_limits.json").read_text())
    return PoseLimits(theta_min=torch.tensor(data["theta_min"], dtype=torch.float32),
                      theta_max=torch.tensor(data["theta_max"], dtype=torch.float32),
                      joints=tuple(data["joints"]), provenance=data["provenance"])
