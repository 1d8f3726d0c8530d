"""BVH export of SMPL motion (docs/design.md#outputs): Y-up, centimetres, ZYX Euler channels, no IK.

Each BVH joint is an SMPL joint: its OFFSET is the rest-pose bone (child − parent), its channels
hold SMPL's local rotation as R = Rz·Ry·Rx, so BVH forward kinematics is SMPL's exactly. The root
OFFSET is zero and its position channels carry the absolute pelvis position: importers that add
OFFSET to the channels and those (Blender) that take the channels as absolute then agree.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from k2m_core.atomic import atomic_path
from k2m_core.body.kinematics import JOINT_NAMES, NUM_JOINTS, PARENTS
from k2m_core.rotations import axis_angle_to_matrix, matrix_to_euler_zyx

CM = 100.0
_CHILDREN = [[c for c in range(NUM_JOINTS) if PARENTS[c] == j] for j in range(NUM_JOINTS)]


def _hierarchy(rest_cm: np.ndarray) -> list[str]:
    lines = ["HIERARCHY"]

    def emit(joint: int, depth: int) -> None:
        pad = "\t" * depth
        offset = np.zeros(3) if joint == 0 else rest_cm[joint] - rest_cm[PARENTS[joint]]
        lines.append(f"{pad}{'ROOT' if joint == 0 else 'JOINT'} {JOINT_NAMES[joint]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        channels = "6 Xposition Yposition Zposition " if joint == 0 else "3 "
        lines.append(f"{pad}\tCHANNELS {channels}Zrotation Yrotation Xrotation")
        for child in _CHILDREN[joint]:
            emit(child, depth + 1)
        if not _CHILDREN[joint]:
            # Leaves (head, hands, feet) get a tail continuing their bone by half its length.
            tail = 0.5 * offset
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            lines.append(f"{pad}\t\tOFFSET {tail[0]:.6f} {tail[1]:.6f} {tail[2]:.6f}")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    emit(0, 0)
    return lines


def _depth_first(joint: int = 0) -> list[int]:
    return [joint] + [j for child in _CHILDREN[joint] for j in _depth_first(child)]


def write_bvh(path: str | os.PathLike, poses, transl, rest_joints, fps: float) -> None:
    """Write ``poses (F, 72)`` axis-angle and ``transl (F, 3)`` metres of a y-up world motion.

    ``rest_joints (24, 3)``: the body model's shaped rest pose (y-up, metres) for the motion's betas.
    """
    poses = np.asarray(poses, np.float64)
    transl = np.asarray(transl, np.float64)
    rest = np.asarray(rest_joints, np.float64)
    frames = len(poses)
    if poses.shape != (frames, 72) or transl.shape != (frames, 3) or rest.shape != (NUM_JOINTS, 3):
        raise ValueError(f"expected poses (F, 72), transl (F, 3), rest_joints (24, 3); got "
                         f"{poses.shape}, {transl.shape}, {rest.shape}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    # float64 throughout: near gimbal lock (pitch ±90°) the Euler split loses precision in float32.
    rotmats = axis_angle_to_matrix(torch.from_numpy(poses.reshape(frames, NUM_JOINTS, 3)))
    euler = np.degrees(matrix_to_euler_zyx(rotmats).numpy())[:, _depth_first()]  # (F, 24, 3) z, y, x
    root = (rest[0] + transl) * CM  # SMPL puts the pelvis at J0 + transl
    motion = np.concatenate([root, euler.reshape(frames, -1)], axis=1)
    lines = _hierarchy(rest * CM)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{value:.6f}" for value in row) for row in motion]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_bvh_smpl(path: str | os.PathLike) -> dict:
    """Read a BVH whose joints carry SMPL's 24 names (as `write_bvh` writes them; centimetres,
    y-up) back into ``poses (F, 72)`` axis-angle, the pelvis position ``pelvis (F, 3)`` in metres
    and ``fps``. Any rotation-channel order is honoured (BVH composes them left to right)."""
    from k2m_core.errors import UserError
    from k2m_core.rotations import matrix_to_axis_angle

    try:
        text = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read BVH ({exc})") from None
    head, sep, motion = text.partition("MOTION")
    if not sep:
        raise UserError(f"{path}: not a BVH file (no MOTION section)")
    names, channels, tokens = [], [], head.split()
    for i, token in enumerate(tokens):
        if token in ("ROOT", "JOINT"):
            names.append(tokens[i + 1])
        elif token == "CHANNELS":
            count = int(tokens[i + 1])
            channels.append(tokens[i + 2:i + 2 + count])
    missing = sorted(set(JOINT_NAMES) - set(names))
    if missing or len(names) != len(channels):
        raise UserError(f"{path}: not an SMPL BVH (missing joints {', '.join(missing[:4]) or '?'}); "
                        "k2m reads BVH files with SMPL's 24 joint names, as `k2m export` writes them")
    lines = [line.strip() for line in motion.strip().splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("Frames:") or not lines[1].startswith("Frame Time:"):
        raise UserError(f"{path}: malformed MOTION section (it must start with 'Frames:' and 'Frame Time:' lines)")
    try:
        declared = int(lines[0].split(":", 1)[1])
        frame_time = float(lines[1].split(":", 1)[1])
        data = np.array([[float(v) for v in line.split()] for line in lines[2:]], dtype=np.float64)
    except ValueError as exc:
        raise UserError(f"{path}: malformed MOTION section ({exc})") from None
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise UserError(f"{path}: 'Frame Time: {lines[1].split(':', 1)[1].strip()}' must be a positive number of "
                        "seconds per frame")
    widths = np.cumsum([0] + [len(c) for c in channels])
    if data.ndim != 2 or data.shape[1] != widths[-1]:
        raise UserError(f"{path}: frames have {data.shape[-1] if data.ndim == 2 else 0} values, "
                        f"the hierarchy declares {widths[-1]}")
    frames = len(data)
    if frames != declared or frames == 0:
        raise UserError(f"{path}: 'Frames: {declared}' but the file holds {frames} frames; it is cut short or "
                        "damaged")
    if not np.isfinite(data).all():
        raise UserError(f"{path}: frame {int(np.argwhere(~np.isfinite(data))[0, 0])} holds NaN or inf values")
    rotmats = torch.eye(3, dtype=torch.float64).repeat(frames, NUM_JOINTS, 1, 1)
    pelvis = np.zeros((frames, 3))
    for name, chans, start in zip(names, channels, widths[:-1]):
        if name not in JOINT_NAMES:
            continue
        joint = JOINT_NAMES.index(name)
        for k, channel in enumerate(chans):
            values = torch.from_numpy(np.radians(data[:, start + k]))
            axis = "XYZ".index(channel[0].upper())
            if channel.lower().endswith("position"):
                pelvis[:, axis] = data[:, start + k] / CM
            else:
                vector = torch.zeros(frames, 3, dtype=torch.float64)
                vector[:, axis] = values
                rotmats[:, joint] = rotmats[:, joint] @ axis_angle_to_matrix(vector)
    poses = matrix_to_axis_angle(rotmats).reshape(frames, 72).numpy()
    # Frame times are printed with 8 decimals: round away the 1e-7 error of 1/0.03333333.
    return {"poses": poses, "pelvis": pelvis, "fps": round(1.0 / frame_time, 4)}
