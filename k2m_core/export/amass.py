"""AMASS-style ``.npz`` motion files (docs/design.md#outputs)."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from k2m_core import __version__
from k2m_core.atomic import atomic_path
from k2m_core.errors import UserError

NO_SEED = -1  # stored when the motion came from no seeded sampler (npz cannot hold None without pickle)
_BODY_POSE = 66  # global orient + 21 body joints: shared by SMPL, SMPL+H and SMPL-X


def write_amass_npz(path: str | os.PathLike, poses, trans, betas, joints, fps: float,
                    text: str = "", seed: int | None = None) -> None:
    """Write a z-up world motion: ``poses (F, 72)``, ``trans (F, 3)``, ``betas (10,)``, ``joints (F, 24, 3)``."""
    poses, trans = np.asarray(poses, np.float32), np.asarray(trans, np.float32)
    betas, joints = np.asarray(betas, np.float32), np.asarray(joints, np.float32)
    frames = len(poses)
    for name, array, shape in (("poses", poses, (frames, 72)), ("trans", trans, (frames, 3)),
                               ("betas", betas, (10,)), ("joints", joints, (frames, 24, 3))):
        if array.shape != shape:
            raise ValueError(f"{name} must be {shape}, got {array.shape}")
    arrays = dict(
        poses=poses, trans=trans, betas=betas, gender=np.array("neutral"),
        # Readers disagree on the key (aitviewer: mocap_framerate; newer AMASS: mocap_frame_rate).
        mocap_framerate=np.array(float(fps)), mocap_frame_rate=np.array(float(fps)),
        surface_model_type=np.array("smpl"), joints=joints, text=np.array(str(text)),
        seed=np.array(NO_SEED if seed is None else int(seed), dtype=np.int64),
        k2m_version=np.array(__version__),
    )
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)  # a handle, not a name: np.savez would append ".npz" to the temp name


def _text(value) -> str:
    """A 0-d string array as ``str``; some AMASS files store the gender as bytes."""
    value = np.asarray(value).item()
    return value.decode() if isinstance(value, bytes) else str(value)


def read_amass_npz(path: str | os.PathLike) -> dict:
    """Read an AMASS-style file: SMPL ``poses (F, 72)`` or SMPL+H ``(F, 156)`` / SMPL-X ``(F, 165)``.

    Beyond SMPL's 22 body joints the hands are dropped and SMPL's two hand joints set to zero.
    Returns ``poses (F, 72)``, ``trans (F, 3)``, ``betas (10,)`` (float32), ``fps`` (float),
    ``gender``, ``text`` (str), ``seed`` (int or None) and ``joints (F, 24, 3)`` where stored.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # an empty file is an EOFError
        raise UserError(f"{path}: not a readable .npz motion file ({type(err).__name__}: {err or 'empty'})") from None
    missing = [key for key in ("poses", "trans") if key not in data]
    rate_key = next((key for key in ("mocap_framerate", "mocap_frame_rate") if key in data), None)
    if missing or rate_key is None:
        missing += [] if rate_key else ["mocap_framerate or mocap_frame_rate"]
        raise UserError(f"{path}: missing {', '.join(missing)}; an AMASS-style motion needs poses, "
                        "trans and a frame rate")
    poses = np.asarray(data["poses"], np.float32)
    if poses.ndim != 2 or poses.shape[1] not in (72, 156, 165) or len(poses) == 0:
        raise UserError(f"{path}: poses has shape {poses.shape}; expected (F, 72) SMPL, "
                        "(F, 156) SMPL+H or (F, 165) SMPL-X")
    if poses.shape[1] != 72:
        poses = np.concatenate([poses[:, :_BODY_POSE], np.zeros((len(poses), 6), np.float32)], axis=1)
    trans = np.asarray(data["trans"], np.float32)
    if trans.shape != (len(poses), 3):
        raise UserError(f"{path}: trans has shape {trans.shape}; expected ({len(poses)}, 3)")
    betas = np.asarray(data.get("betas", np.zeros(10)), np.float32).reshape(-1)[:10]
    betas = np.pad(betas, (0, 10 - len(betas)))  # AMASS stores 16 betas; SMPL uses 10
    try:
        fps = float(data[rate_key])
    except (TypeError, ValueError):
        fps = float("nan")
    if not (np.isfinite(fps) and fps > 0):
        raise UserError(f"{path}: {rate_key} is {data[rate_key]}; expected a positive frame rate")
    seed = int(data["seed"]) if "seed" in data else NO_SEED
    out = dict(poses=poses, trans=trans, betas=betas, fps=fps,
               gender=_text(data.get("gender", "neutral")), text=_text(data.get("text", "")),
               seed=None if seed == NO_SEED else seed)
    if "joints" in data and data["joints"].shape == (len(poses), 24, 3):
        out["joints"] = np.asarray(data["joints"], np.float32)
    return out
