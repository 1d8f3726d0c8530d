"""Any BVH file: its hierarchy, and the world position and orientation of every joint per frame.

Forward kinematics follows the format: a joint's local transform is a translation by its
``OFFSET`` (plus its position channels, where it has them) followed by its rotation channels
composed left to right in the order they are listed (``Zrotation Yrotation Xrotation`` is
R = Rz·Ry·Rx). ``End Site`` tips become extra points named ``<parent>_end``.

Lengths are converted to metres (`UNITS`): given, or detected from the standing height of the
rest pose, which for a human lands in 1.2–2.2 m for exactly one of the units.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from k2m_core.preprocess.detections import FormatError

# Metres per file unit. "cmu" is the unit of the original CMU ASF/AMC data and of BVH converted
# from it without rescaling (1/0.45 inch).
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.0254 / 0.45}
HUMAN_HEIGHT_M = (1.2, 2.2)


@dataclass
class BvhMotion:
    """``names`` of joints then end sites, ``parents`` (−1 for the root), ``positions (F, J, 3)``
    and ``rotations (F, J, 3, 3)`` (global orientations; an end site has its parent's) in the
    file's axes, in metres; the rest pose (every channel zero) as ``rest (J, 3)``; ``fps``."""

    names: list[str]
    parents: list[int]
    positions: np.ndarray
    rotations: np.ndarray
    rest: np.ndarray
    fps: float
    unit: str

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass
class _Joint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str]


def _parse_hierarchy(tokens: list[str], path: Path) -> list[_Joint]:
    joints: list[_Joint] = []
    stack: list[int] = []
    pending: _Joint | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("ROOT", "JOINT"):
            pending = _Joint(tokens[i + 1], stack[-1] if stack else -1, np.zeros(3), [])
            i += 2
        elif token == "End":  # "End Site"
            pending = _Joint(f"{joints[stack[-1]].name}_end" if stack else "end", stack[-1] if stack else -1,
                             np.zeros(3), [])
            i += 2
        elif token == "{":
            if pending is None:
                raise FormatError("malformed", "a '{' opens no joint in the HIERARCHY")
            joints.append(pending)
            stack.append(len(joints) - 1)
            pending = None
            i += 1
        elif token == "}":
            if not stack:
                raise FormatError("malformed", "unbalanced '}' in the HIERARCHY")
            stack.pop()
            i += 1
        elif token == "OFFSET":
            joints[stack[-1]].offset = np.array([float(v) for v in tokens[i + 1:i + 4]])
            i += 4
        elif token == "CHANNELS":
            count = int(tokens[i + 1])
            channels = tokens[i + 2:i + 2 + count]
            if any(c.lower() not in ("xposition", "yposition", "zposition", "xrotation", "yrotation", "zrotation")
                   for c in channels):
                raise FormatError("malformed", f"unknown channel in {' '.join(channels)}")
            joints[stack[-1]].channels = channels
            i += 2 + count
        else:
            i += 1
    if stack or not joints:
        raise FormatError("malformed", "the HIERARCHY is empty or not closed")
    return joints


def _elementary(axis: int, degrees: np.ndarray) -> np.ndarray:
    """Rotations ``(F, 3, 3)`` by ``degrees (F,)`` about x, y or z."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    out = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    out[:, axis, axis] = 1.0
    out[:, i, i], out[:, j, j] = c, c
    sign = -1.0 if axis != 1 else 1.0  # about y the sine terms swap sides
    out[:, i, j], out[:, j, i] = sign * s, -sign * s
    return out


def read_bvh(path: str | Path, unit: str | None = None) -> BvhMotion:
    """Parse and pose ``path``. Raises `FormatError` (with a report reason) for a file that cannot
    be used; ``unit`` is a key of `UNITS` or None to detect it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise FormatError("unreadable", "not UTF-8 text") from None
    head, sep, motion = text.partition("MOTION")
    if not sep or "HIERARCHY" not in head:
        raise FormatError("unreadable", "not a BVH file (no HIERARCHY and MOTION sections)")
    try:
        joints = _parse_hierarchy(head.split(), path)
    except (ValueError, IndexError):
        raise FormatError("malformed", "unreadable HIERARCHY (bad OFFSET or CHANNELS)") from None
    lines = [line for line in motion.strip().splitlines() if line.strip()]
    try:
        frames = int(lines[0].split(":")[1]) if lines and lines[0].startswith("Frames:") else None
        frame_time = float(lines[1].split(":")[1]) if len(lines) > 1 and lines[1].startswith("Frame Time:") else None
    except ValueError:
        frames = frame_time = None
    if frames is None or frame_time is None:
        raise FormatError("malformed", "the MOTION section needs 'Frames:' and 'Frame Time:' lines")
    if not frame_time > 0:
        raise FormatError("bad-fps", f"Frame Time is {frame_time}; expected a positive number of seconds")
    width = sum(len(j.channels) for j in joints)
    rows = lines[2:]
    if not rows:
        raise FormatError("empty", "the motion has no frames")
    try:
        data = np.array(" ".join(rows).split(), dtype=np.float64)
    except ValueError:
        raise FormatError("malformed", "a frame of the MOTION section holds something that is not a number") from None
    counts = {len(rows[0].split()), len(rows[-1].split())}
    if data.size != len(rows) * width or counts != {width}:
        raise FormatError("malformed", f"{data.size} values in {len(rows)} frames, the hierarchy declares {width} "
                          "per frame (truncated file?)")
    data = data.reshape(len(rows), width)
    if not np.isfinite(data).all():
        raise FormatError("non-finite", "NaN or inf in the MOTION section")
    positions, rotations = _pose(joints, data)
    rest, _ = _pose(joints, np.zeros((1, width)))
    unit = unit or detect_unit(rest[0], path)
    scale = UNITS[unit]
    return BvhMotion([j.name for j in joints], [j.parent for j in joints], positions * scale, rotations,
                     rest[0] * scale, round(1.0 / frame_time, 4), unit)


def _pose(joints: list[_Joint], data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames = len(data)
    positions = np.zeros((frames, len(joints), 3))
    rotations = np.zeros((frames, len(joints), 3, 3))
    column = 0
    for k, joint in enumerate(joints):
        local_t = np.broadcast_to(joint.offset, (frames, 3)).copy()
        local_r = np.broadcast_to(np.eye(3), (frames, 3, 3)).copy()
        for channel in joint.channels:
            axis = "xyz".index(channel[0].lower())
            if channel.lower().endswith("position"):
                local_t[:, axis] += data[:, column]
            else:
                local_r = local_r @ _elementary(axis, data[:, column])
            column += 1
        if joint.parent < 0:
            positions[:, k], rotations[:, k] = local_t, local_r
        else:
            parent_r = rotations[:, joint.parent]
            positions[:, k] = positions[:, joint.parent] + (parent_r @ local_t[..., None])[..., 0]
            rotations[:, k] = parent_r @ local_r
    return positions, rotations


def detect_unit(rest: np.ndarray, path: Path | str = "") -> str:
    """The unit in which the rest pose ``rest (J, 3)`` (file units) stands 1.2–2.2 m tall. Its
    height is the joints' extent along their longest axis (a standing or T-posed body is tallest
    along its up axis or as wide as tall)."""
    extent = float(np.ptp(rest, axis=0).max())
    fits = [name for name, metres in UNITS.items() if HUMAN_HEIGHT_M[0] <= extent * metres <= HUMAN_HEIGHT_M[1]]
    if len(fits) != 1:
        raise FormatError("unknown-units", f"its rest pose is {extent:.4g} units tall, which is no human height in "
                          f"{', '.join(UNITS)}; give --units")
    return fits[0]
