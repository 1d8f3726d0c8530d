"""AIST++ motion files (``.pkl``: ``smpl_poses (F, 72)``, ``smpl_trans (F, 3)``, ``smpl_scaling (1,)``),
read without running any code from the file.

AIST++ ships its SMPL fits as Python pickles, and unpickling can call any function the file
names. `load_plain_pickle` accepts only what such files hold — dicts, lists, tuples, strings,
numbers and NumPy arrays — by refusing every global except the few NumPy constructors arrays are
rebuilt with; anything else stops the load before it is called.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from k2m_core.errors import UserError

FPS = 60.0  # AIST++ motion is captured and stored at 60 fps (the file does not say)

# The NumPy callables a pickled array needs (numpy 1 and numpy 2 module names).
_ALLOWED = {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
            for name in ("_reconstruct", "scalar")} | {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"it asks to run {module}.{name}; only NumPy arrays and plain "
                                         "containers are accepted")
        return super().find_class(module, name)


def _plain(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype != object
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, bytes, np.generic))


def load_plain_pickle(path: str | os.PathLike):
    """Unpickle ``path`` allowing only NumPy arrays (no object arrays) and plain containers.
    Raises `ValueError` naming what was refused or why the file is unreadable."""
    data = Path(path).read_bytes()
    try:
        value = _PlainUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"refused: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as exc:
        raise ValueError(f"not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not _plain(value):
        raise ValueError("refused: it holds objects other than NumPy arrays and plain containers")
    return value


def read_aistpp(path: str | os.PathLike) -> dict:
    """``poses (F, 72)`` axis-angle and ``trans (F, 3)`` in metres (``smpl_trans / smpl_scaling``)
    of a y-up world, and ``fps``. Raises `UserError` for a file that is not AIST++ motion."""
    try:
        data = load_plain_pickle(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc})") from None
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or not {"smpl_poses", "smpl_trans"} <= set(data):
        raise UserError(f"{path}: not AIST++ motion (needs smpl_poses and smpl_trans)")
    poses = np.asarray(data["smpl_poses"], dtype=np.float64)
    trans = np.asarray(data["smpl_trans"], dtype=np.float64)
    scaling = np.asarray(data.get("smpl_scaling", 1.0), dtype=np.float64).reshape(-1)
    if poses.ndim != 2 or poses.shape[1] != 72 or len(poses) == 0 or trans.shape != (len(poses), 3):
        raise UserError(f"{path}: smpl_poses {poses.shape} and smpl_trans {trans.shape} must be (F, 72) and (F, 3)")
    if scaling.size != 1 or not scaling[0] > 0 or not (np.isfinite(poses).all() and np.isfinite(trans).all()):
        raise UserError(f"{path}: smpl_scaling must be one positive number and the motion finite")
    return {"poses": poses, "trans": trans / scaling[0], "fps": FPS}
