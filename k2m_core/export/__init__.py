"""Exporting motion (docs/design.md#outputs): the upright world frame, AMASS-style ``.npz`` and ``.bvh``."""

from k2m_core.export.amass import read_amass_npz, write_amass_npz
from k2m_core.export.bvh import write_bvh
from k2m_core.export.world import Y_UP_TO_Z_UP, camera_to_world, rotate_motion

__all__ = ["Y_UP_TO_Z_UP", "camera_to_world", "read_amass_npz", "rotate_motion", "write_amass_npz",
           "write_bvh"]
