"""Body models: SMPL parameters → joints, COCO-17 keypoints, vertices (docs/design.md#body-models).

`load_body_model` picks a backend from what the user gave:

- ``None`` or ``"skeleton"`` → the licence-free skeleton (default);
- ``"smpl"`` → the SMPL model from ``$K2M_SMPL_DIR``;
- a path to a ``.pkl``/``.npz`` model file or a folder holding ``SMPL_NEUTRAL.pkl``/``.npz``.
"""

from __future__ import annotations

import os
from pathlib import Path

from k2m_core.body.base import BodyModel, BodyOutput
from k2m_core.errors import UserError

__all__ = ["BodyModel", "BodyOutput", "load_body_model"]

SMPL_DIR_ENV = "K2M_SMPL_DIR"


def load_body_model(spec: str | os.PathLike | None = None) -> BodyModel:
    if spec is None or str(spec) == "skeleton":
        from k2m_core.body.skeleton import SkeletonBody

        return SkeletonBody()
    if str(spec) == "smpl":
        env = os.environ.get(SMPL_DIR_ENV)
        if not env:
            raise UserError(
                f"--body-model smpl needs the SMPL model files: set {SMPL_DIR_ENV} to the folder "
                "holding SMPL_NEUTRAL.pkl (download it from smpl.is.tue.mpg.de after accepting the "
                "licence), pass --body-model PATH, or use --body-model skeleton")
        spec = env
    from k2m_core.body.smpl import SMPLBody

    path = Path(spec)
    if not path.exists():
        raise UserError(f"body model {path}: no such file or folder; pass a SMPL .pkl/.npz file, "
                        "a folder holding SMPL_NEUTRAL.pkl, or 'skeleton'")
    return SMPLBody.from_path(path)
