"""From a BVH skeleton to SMPL's 24 joints and COCO-17 keypoints, without fitting a body.

A naming scheme (`SCHEMES`, or a ``--joint-map`` TOML) names the BVH joint at the place of each
SMPL joint that every human skeleton has: pelvis, hips, knees, ankles, shoulders, elbows, wrists,
neck and head; toes and a hand (finger) joint where the skeleton has them — and every SMPL joint
for the SMPL-named BVH that `k2m export` writes. SMPL joints a skeleton has no counterpart for
are placed from the mapped ones by rules fitted to SMPL's own rest pose
(`k2m_core.body.skeleton.REST_OFFSETS`), so on a SMPL skeleton they land where SMPL's are:

- spine1, spine2, spine3 lie on the BVH spine (the chain of joints from the pelvis to the neck)
  at the fractions of its length where SMPL's spine joints lie on SMPL's;
- each collar is the affine mix of spine3, neck and shoulder that reproduces SMPL's collar;
- a hand joint lies beyond the wrist, towards the mapped hand (finger) joint — a direction, not
  a place: finger joints differ between skeletons — or, without one, along the forearm, at SMPL's
  hand-to-forearm length ratio;
- a missing toe joint is taken from the ankle's end site, or the ankle itself.

COCO-17 keypoints are then the skeleton body model's: limbs are SMPL joints, and the face
(nose, eyes, ears) sits at `FACE_OFFSETS` in the head's frame, scaled like the model's by the
body's size (its pelvis-to-hip distance against SMPL's, which only overall size changes there). That frame is the BVH head joint's
orientation, calibrated on the rest pose (every channel zero), where the head's up is the file's
up axis and its left the axis nearest the direction from the right to the left shoulder
(`rest_axes`; for the usual rest pose, upright and facing +z, the file's own axes as in SMPL).

Names match case-insensitively and ignore a namespace prefix (``mixamorig:Hips`` is ``Hips``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from k2m_core.body.kinematics import COCO_LIMB_JOINTS, COCO_LIMB_ROWS, JOINT_NAMES, PARENTS
from k2m_core.body.skeleton import FACE_OFFSETS, REST_OFFSETS
from k2m_core.errors import UserError
from k2m_core.mocap.bvh import BvhMotion
from k2m_core.preprocess.detections import FormatError

REQUIRED = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
            "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
            "neck", "head")
OPTIONAL = ("left_foot", "right_foot", "left_hand", "right_hand")


def _sided(table: dict[str, str], left: str, right: str) -> dict[str, tuple[str, ...]]:
    """Expand ``{"hip": "{s}Hip"}``-style entries for both sides; plain names stay as they are."""
    out: dict[str, tuple[str, ...]] = {}
    for joint, names in table.items():
        names = names.split("|")
        if joint.startswith("*"):
            for side, word in (("left", left), ("right", right)):
                out[f"{side}_{joint[1:]}"] = tuple(n.format(s=word) for n in names)
        else:
            out[joint] = tuple(names)
    return out


# SMPL joint → BVH names (alternatives separated by "|"), per naming scheme.
SCHEMES: dict[str, dict[str, tuple[str, ...]]] = {
    "smpl": {name: (name,) for name in JOINT_NAMES},  # as `k2m export` writes it
    # CMU via cgspeed, "3dsMax-friendly" release as in the fixtures (Hips, LHipJoint, LeftHip, …).
    "cmu-3dsmax": _sided({"pelvis": "Hips", "neck": "Neck", "head": "Head", "*hip": "{s}Hip", "*knee": "{s}Knee",
                          "*ankle": "{s}Ankle", "*foot": "{s}Toe", "*shoulder": "{s}Shoulder",
                          "*elbow": "{s}Elbow", "*wrist": "{s}Wrist"}, "Left", "Right")
    | {"left_hand": ("LFingers",), "right_hand": ("RFingers",)},
    # Mixamo, and the CMU conversions that share its names (LeftUpLeg, LeftArm, LeftShoulder = collar).
    "mixamo": _sided({"pelvis": "Hips", "neck": "Neck", "head": "Head", "*hip": "{s}UpLeg", "*knee": "{s}Leg",
                      "*ankle": "{s}Foot", "*foot": "{s}ToeBase|{s}Toe", "*shoulder": "{s}Arm",
                      "*elbow": "{s}ForeArm", "*wrist": "{s}Hand",
                      "*hand": "{s}HandMiddle1|{s}FingerBase|{s}HandIndex1"}, "Left", "Right"),
    # CMU via cgspeed, "Daz-friendly" release (hip, abdomen, chest, lThigh, lShin, lShldr, …).
    "daz": _sided({"pelvis": "hip", "neck": "neck", "head": "head", "*hip": "{s}Thigh", "*knee": "{s}Shin",
                   "*ankle": "{s}Foot", "*foot": "{s}Toe|{s}Foot_end", "*shoulder": "{s}Shldr",
                   "*elbow": "{s}ForeArm", "*wrist": "{s}Hand", "*hand": "{s}Mid1|{s}Index1|{s}Hand_end"},
                  "l", "r"),
}


def _key(name: str) -> str:
    return name.rsplit(":", 1)[-1].lower()


def load_joint_map(path: Path) -> dict[str, tuple[str, ...]]:
    """A ``--joint-map`` TOML: ``smpl_joint = "BVH joint"`` lines, at the top level or under
    ``[joints]``; keys are SMPL joint names (`k2m_core.body.kinematics.JOINT_NAMES`)."""
    from k2m_core.config import read_toml

    data = read_toml(path, "give --joint-map a TOML file of  smpl_joint = \"BVH joint\"  lines")
    table = data.get("joints", data)
    if not isinstance(table, dict) or not all(isinstance(v, str) and v for v in table.values()):
        raise UserError(f"--joint-map {path}: expected lines like  left_hip = \"LeftUpLeg\"  (SMPL joint = BVH joint)")
    unknown = sorted(set(table) - set(JOINT_NAMES))
    if unknown:
        raise UserError(f"--joint-map {path}: {', '.join(unknown)} are no SMPL joint names; use "
                        f"{', '.join(JOINT_NAMES)} (at least {', '.join(REQUIRED)})")
    missing = [name for name in REQUIRED if name not in table]
    if missing:
        raise UserError(f"--joint-map {path}: needs {', '.join(missing)}")
    return {joint: (name,) for joint, name in table.items()}


def match_scheme(names: list[str], schemes: dict[str, dict[str, tuple[str, ...]]]) -> tuple[str, dict[str, int]]:
    """The first scheme whose required joints are all in ``names`` → (scheme name, SMPL joint →
    index into ``names``). Raises `FormatError` ("unknown-skeleton") if none fits."""
    index = {_key(n): i for i, n in enumerate(names)}
    best = (0, "")
    for scheme, table in schemes.items():
        found = {joint: next((index[_key(c)] for c in candidates if _key(c) in index), None)
                 for joint, candidates in table.items()}
        hits = sum(found.get(j) is not None for j in REQUIRED)
        if hits == len(REQUIRED):
            return scheme, {j: i for j, i in found.items() if i is not None}
        best = max(best, (hits, scheme))
    raise FormatError("unknown-skeleton", f"joint names match no known skeleton (closest: {best[1] or 'none'}, "
                      f"{best[0]}/{len(REQUIRED)} joints; e.g. {', '.join(names[:5])}); give --joint-map FILE")


def _rest_smpl() -> np.ndarray:
    offsets = np.asarray(REST_OFFSETS)
    joints = [offsets[0]]
    for j in range(1, 24):
        joints.append(joints[PARENTS[j]] + offsets[j])
    return np.stack(joints)


def _fitted_rules() -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """Spine fractions (3,); per side, collar weights (3,) of (spine3, neck, shoulder) and the
    hand/forearm length ratio (SMPL is not quite symmetric)."""
    rest = _rest_smpl()
    chain = [0, 3, 6, 9, 12]
    lengths = np.linalg.norm(np.diff(rest[chain], axis=0), axis=1)
    fractions = np.cumsum(lengths)[:3] / lengths.sum()
    weights, ratios = {}, {}
    for side, (collar, shoulder, elbow, wrist, hand) in (("left", (13, 16, 18, 20, 22)),
                                                        ("right", (14, 17, 19, 21, 23))):
        system = np.vstack([np.stack([rest[9], rest[12], rest[shoulder]], axis=1), np.ones((1, 3))])
        weights[side] = np.linalg.lstsq(system, np.r_[rest[collar], 1.0], rcond=None)[0]
        ratios[side] = float(np.linalg.norm(rest[hand] - rest[wrist]) / np.linalg.norm(rest[wrist] - rest[elbow]))
    return fractions, weights, ratios


SPINE_FRACTIONS, COLLAR_WEIGHTS, HAND_RATIO = _fitted_rules()


def _along(points: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Points at arc-length ``fractions`` of the polyline ``points (F, P, 3)`` → ``(F, len, 3)``."""
    seg = np.linalg.norm(np.diff(points, axis=1), axis=-1)  # (F, P-1)
    cum = np.concatenate([np.zeros((len(points), 1)), np.cumsum(seg, axis=1)], axis=1)
    out = np.empty((len(points), len(fractions), 3))
    for k, fraction in enumerate(fractions):
        target = fraction * cum[:, -1:]
        i = np.clip((cum[:, 1:] < target).sum(1), 0, seg.shape[1] - 1)
        rows = np.arange(len(points))
        w = np.where(seg[rows, i] > 0, (target[:, 0] - cum[rows, i]) / np.maximum(seg[rows, i], 1e-12), 0.0)
        out[:, k] = points[rows, i] + w[:, None] * (points[rows, i + 1] - points[rows, i])
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def smpl_from_bvh(motion: BvhMotion, mapping: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """SMPL joints ``(F, 24, 3)`` and COCO-17 keypoints ``(F, 17, 3)`` in the BVH's axes (metres)
    from the mapped BVH joints (``mapping``: SMPL joint name → index into ``motion.names``)."""
    pos, frames = motion.positions, len(motion.positions)
    joints = np.zeros((frames, 24, 3))
    j = {name: JOINT_NAMES.index(name) for name in JOINT_NAMES}
    for name, k in mapping.items():
        if not name.endswith("_hand"):
            joints[:, j[name]] = pos[:, k]
    # Spine: the BVH chain from the pelvis up to the neck, without repeated points.
    chain, k = [], mapping["neck"]
    while k >= 0 and k != mapping["pelvis"]:
        chain.append(k)
        k = motion.parents[k]
    chain = [mapping["pelvis"]] + chain[::-1] if k == mapping["pelvis"] else [mapping["pelvis"], mapping["neck"]]
    rest = motion.rest[chain]
    keep = [0] + [i for i in range(1, len(chain)) if np.linalg.norm(rest[i] - rest[i - 1]) > 1e-6]
    spine = _along(pos[:, [chain[i] for i in keep]], SPINE_FRACTIONS)
    for k, name in enumerate(("spine1", "spine2", "spine3")):
        if name not in mapping:
            joints[:, j[name]] = spine[:, k]
    for side in ("left", "right"):
        a, b, c = COLLAR_WEIGHTS[side]
        if f"{side}_collar" not in mapping:
            joints[:, j[f"{side}_collar"]] = (a * joints[:, j["spine3"]] + b * joints[:, j["neck"]]
                                              + c * joints[:, j[f"{side}_shoulder"]])
        wrist, elbow = joints[:, j[f"{side}_wrist"]], joints[:, j[f"{side}_elbow"]]
        forearm = np.linalg.norm(wrist - elbow, axis=-1, keepdims=True)
        towards = pos[:, mapping[f"{side}_hand"]] - wrist if f"{side}_hand" in mapping else wrist - elbow
        joints[:, j[f"{side}_hand"]] = wrist + HAND_RATIO[side] * forearm * _unit(towards)
        if f"{side}_foot" not in mapping:
            ankle = mapping[f"{side}_ankle"]
            tips = [i for i, p in enumerate(motion.parents) if p == ankle]
            joints[:, j[f"{side}_foot"]] = pos[:, tips[0]] if tips else pos[:, ankle]
    keypoints = np.empty((frames, 17, 3))
    keypoints[:, list(COCO_LIMB_ROWS)] = joints[:, list(COCO_LIMB_JOINTS)]
    rest, smpl = motion.rest, _rest_smpl()
    size = sum(np.linalg.norm(rest[mapping[f"{s}_hip"]] - rest[mapping["pelvis"]]) for s in ("left", "right")) / \
        (np.linalg.norm(smpl[1] - smpl[0]) + np.linalg.norm(smpl[2] - smpl[0]))
    face = np.asarray(FACE_OFFSETS) * float(np.clip(size, 0.7, 1.4))
    keypoints[:, :5] = joints[:, j["head"], None] + np.einsum("fab,kb->fka", _head_frames(motion, mapping), face)
    return joints, keypoints


def _nearest_axis(direction: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """The signed coordinate axis (unit ``(3,)``) nearest ``direction``, other than ``exclude``'s."""
    weight = np.abs(direction) * (1.0 if exclude is None else (exclude == 0))
    axis = np.zeros(3)
    k = int(np.argmax(weight))
    axis[k] = 1.0 if direction[k] >= 0 else -1.0
    return axis


def rest_axes(motion: BvhMotion, mapping: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The body's up and left in the file's axes, as seen in the rest pose: the coordinate axes
    nearest the direction from the ankles to the head and from the right to the left shoulder."""
    rest = motion.rest
    up = _nearest_axis(rest[mapping["head"]] - (rest[mapping["left_ankle"]] + rest[mapping["right_ankle"]]) / 2)
    return up, _nearest_axis(rest[mapping["left_shoulder"]] - rest[mapping["right_shoulder"]], exclude=up)


def _head_frames(motion: BvhMotion, mapping: dict[str, int]) -> np.ndarray:
    """``(F, 3, 3)``: columns are the head's left, up and forward axes in the BVH's axes."""
    up, left = rest_axes(motion, mapping)
    rest_frame = np.stack([left, up, np.cross(left, up)], axis=1)
    return motion.rotations[:, mapping["head"]] @ rest_frame
