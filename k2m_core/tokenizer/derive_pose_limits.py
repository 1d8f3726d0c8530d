"""Derive the pose limits θ_min/θ_max of L_pose (paper eq. 8) and write ``pose_limits.json``.

The paper took its limits from AMASS statistics, refined by eye. AMASS is not redistributable, so
k2m derives them from the real SMPL motion in ``shared/fixtures/real`` and anatomy:

1. **Data.** Per-joint, per-axis min/max of SMPL axis-angle components over

   - AIST++ ``gBR_sBM_cAll_d04_mBR0_ch01`` (720 frames of break-dance basics, a multi-view SMPL
     fit; CC BY 4.0), and
   - the monocular SMPL fit stored with the running clip ``running_halpe26_2d.npz`` (203 frames;
     only its SMPL arrays are read, not its 2D rows, which are GLAMR's body26fk layout);

   each pooled with its left↔right mirror image (so the limits are symmetric), then widened by a
   margin (default 0.15 rad) so real poses sit well inside.
2. **Anatomy.** Conservative joint ranges written below in SMPL's local axes (x = subject's left,
   y = up, z = forward in the rest pose): knees flex one way (+x), elbows one way (left −y,
   right +y), hips flex forward (−x), wrists, ankles and toes have modest ranges, and so on.
   They cover motions the two clips lack (deep squats, kicks, arms overhead).
3. **Union.** ``θ_min = min(anatomy_min, data_min − margin)``, ``θ_max = max(anatomy_max,
   data_max + margin)``: a pose is penalised only if it leaves both the anatomical box and the
   observed range.

Axis-angle components are not Euler angles: for large combined rotations these boxes are a
heuristic, as in the paper. Run from the repository root::

    python -m k2m_core.tokenizer.derive_pose_limits            # rewrites pose_limits.json
    python -m k2m_core.tokenizer.derive_pose_limits --margin 0.2 --out /tmp/limits.json
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np

from k2m_core.body.kinematics import JOINT_NAMES

BODY_JOINTS = JOINT_NAMES[1:]  # the 23 joints L_pose limits (global orientation is free)
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real"
AISTPP = FIXTURES / "aistpp_gBR_sBM_cAll_d04_mBR0_ch01.pkl"
RUNNING = FIXTURES / "running_halpe26_2d.npz"
OUT = Path(__file__).with_name("pose_limits.json")

# Anatomical boxes (radians, (min, max) for x, y, z) for central and left joints; right joints
# are their mirror images (see `mirror_box`).
ANATOMY = {
    "left_hip": ((-2.2, 0.5), (-0.7, 0.7), (-0.5, 0.9)),  # −x flexes forward, +z abducts
    "spine1": ((-0.35, 0.7), (-0.35, 0.35), (-0.35, 0.35)),  # +x bends forward
    "left_knee": ((-0.1, 2.5), (-0.4, 0.4), (-0.3, 0.3)),  # flexes one way only (+x)
    "spine2": ((-0.35, 0.7), (-0.35, 0.35), (-0.35, 0.35)),
    "left_ankle": ((-0.5, 0.9), (-0.5, 0.5), (-0.4, 0.4)),  # +x plantar flexion
    "spine3": ((-0.35, 0.7), (-0.35, 0.35), (-0.35, 0.35)),
    "left_foot": ((-0.7, 0.4), (-0.2, 0.2), (-0.2, 0.2)),  # toes
    "neck": ((-0.6, 0.7), (-0.7, 0.7), (-0.5, 0.5)),
    "left_collar": ((-0.3, 0.3), (-0.5, 0.5), (-0.3, 0.5)),  # +z lifts the shoulder
    "head": ((-0.6, 0.6), (-0.7, 0.7), (-0.5, 0.5)),
    "left_shoulder": ((-1.6, 1.6), (-1.8, 0.9), (-1.7, 1.6)),  # −z lowers the arm, −y swings it forward
    "left_elbow": ((-1.2, 1.2), (-2.6, 0.1), (-0.4, 0.4)),  # flexes one way only (−y)
    "left_wrist": ((-0.9, 0.9), (-0.6, 0.6), (-1.3, 1.1)),
    "left_hand": ((-0.4, 0.4), (-0.4, 0.4), (-0.4, 0.4)),
}
# Mirroring across the sagittal plane (x → −x) maps axis-angle (a, b, c) to (a, −b, −c).
MIRROR_SIGN = np.array([1.0, -1.0, -1.0])


def mirror_joint(name: str) -> str:
    return name.replace("left_", "right_") if name.startswith("left_") else name.replace("right_", "left_")


def mirror_box(box: np.ndarray) -> np.ndarray:
    """``(3, 2)`` (min, max) box → its mirror image."""
    flipped = box * MIRROR_SIGN[:, None]
    return np.sort(flipped, axis=1)


def anatomical_boxes() -> np.ndarray:
    """``(23, 3, 2)`` anatomical (min, max) per joint and axis."""
    boxes = []
    for name in BODY_JOINTS:
        if name in ANATOMY:
            boxes.append(np.array(ANATOMY[name], dtype=np.float64))
        else:
            boxes.append(mirror_box(np.array(ANATOMY[mirror_joint(name)], dtype=np.float64)))
    return np.stack(boxes)


def mirror_poses(body_pose: np.ndarray) -> np.ndarray:
    """``(F, 23, 3)`` body poses → the left↔right mirrored motion."""
    index = [BODY_JOINTS.index(mirror_joint(name)) for name in BODY_JOINTS]
    return body_pose[:, index] * MIRROR_SIGN


class _ArraysOnly(pickle.Unpickler):
    """Unpickles NumPy arrays and plain containers only (AIST++ stores its fits as pickled dicts of
    arrays): any other global a file names is refused, so loading it runs no code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not a NumPy array part; refusing to load it")
        return super().find_class(module, name)


def load_sources(aistpp: Path, running: Path) -> dict[str, np.ndarray]:
    """Real SMPL body poses ``(F, 23, 3)`` per source."""
    with open(aistpp, "rb") as f:
        aist = _ArraysOnly(f).load()["smpl_poses"].reshape(-1, 24, 3)[:, 1:]
    run = np.load(running)["smpl_body_pose"].reshape(-1, 23, 3)
    return {aistpp.name: aist.astype(np.float64), f"{running.name} (smpl_body_pose)": run.astype(np.float64)}


def derive(sources: dict[str, np.ndarray], margin: float) -> dict:
    poses = np.concatenate([np.concatenate([p, mirror_poses(p)]) for p in sources.values()])
    data_min, data_max = poses.min(0) - margin, poses.max(0) + margin
    anatomy = anatomical_boxes()
    theta_min = np.minimum(anatomy[..., 0], data_min)
    theta_max = np.maximum(anatomy[..., 1], data_max)
    frames = {name: int(p.shape[0]) for name, p in sources.items()}
    provenance = (
        "Union of (a) anatomical joint ranges written by hand in SMPL local axes (x = subject's left, "
        "y = up, z = forward; knees flex +x only, elbows flex one way, etc.; see derive_pose_limits.py) and "
        f"(b) the per-axis range of real SMPL poses widened by {margin} rad: "
        + ", ".join(f"{n} ({f} frames)" for n, f in frames.items())
        + ", each pooled with its left-right mirror image. AIST++ annotations CC BY 4.0 (via the MIT-licensed "
        "momask-codes repository); the running clip's SMPL fit is a monocular estimate from "
        "eth-ait/aitviewer's example resources (MIT). The paper used AMASS statistics instead (not redistributable)."
    )
    return {
        "provenance": provenance,
        "units": "radians; SMPL axis-angle components of the 23 body joints' local rotations",
        "axes": ["x", "y", "z"],
        "joints": list(BODY_JOINTS),
        "margin": margin,
        "sources": frames,
        "theta_min": np.round(theta_min, 4).tolist(),
        "theta_max": np.round(theta_max, 4).tolist(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aistpp", type=Path, default=AISTPP, help="AIST++ SMPL pickle (smpl_poses (F, 72))")
    parser.add_argument("--running", type=Path, default=RUNNING, help="npz with smpl_body_pose (F, 69)")
    parser.add_argument("--margin", type=float, default=0.15, help="widening of the data range, radians")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    limits = derive(load_sources(args.aistpp, args.running), args.margin)
    args.out.write_text(json.dumps(limits, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
