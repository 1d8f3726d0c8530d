"""k2m: text-driven 3D human motion (SMPL) learned from 2D keypoints only.

`k2m_core` holds everything that computes; `k2m_cli` is the thin command-line layer.
Importing this package does not import torch.
"""

__version__ = "0.1.0"
