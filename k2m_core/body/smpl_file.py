"""Reading SMPL model files without chumpy, and writing generated SMPL-format files for tests.

The official SMPL ``.pkl`` files are Python-2 pickles whose arrays are ``chumpy.Ch`` objects, and
chumpy breaks on NumPy ≥ 1.24. `load_smpl_model` reads them with a restricted unpickler: it resolves
only NumPy's array reconstructors, SciPy's sparse matrix classes, a few harmless builtins and a
stand-in for every chumpy class (which keeps the pickled state; the array is in its ``x`` entry).
Any other global (``os.system``, ``builtins.eval``, …) is refused before anything is called, so a
model file can never run code. ``.npz`` files with the same keys load through ``np.load`` without
pickle.

`write_random_smpl_model` writes a *generated* model with the right keys, shapes and pickle layout
(never the licensed model) so the `smpl` backend can be tested and benchmarked anywhere.
"""

from __future__ import annotations

import codecs
import copyreg
import importlib
import os
import pickle
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse
from scipy.spatial import ConvexHull

from k2m_core.body.kinematics import NUM_JOINTS, PARENTS
from k2m_core.body.skeleton import FACE_OFFSETS, REST_OFFSETS
from k2m_core.errors import UserError

NUM_VERTICES = 6890
NUM_BETAS = 10
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)  # 207: (R − I) of the 23 non-root joints
# SMPL vertices of COCO's nose, left eye, right eye, left ear, right ear (docs/design.md#ref-smpl).
FACE_VERTEX_IDS = (332, 2800, 6260, 583, 4071)
# Names a folder is searched for, in order (SMPL_NEUTRAL.* as smplx expects, then the official names).
MODEL_FILE_NAMES = (
    "SMPL_NEUTRAL.pkl", "SMPL_NEUTRAL.npz",
    "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl", "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
)
HOW_TO_GET = ("download SMPL_NEUTRAL.pkl from smpl.is.tue.mpg.de after accepting the licence, "
              "or use --body-model skeleton")
ROOT_PARENT = 4294967295  # the official kintree_table stores the root's parent as uint32(−1)


@dataclass(frozen=True)
class SMPLModelData:
    """The arrays of one SMPL model, float64 unless stated."""

    v_template: np.ndarray  # (6890, 3) rest-pose mesh, metres, y up
    shapedirs: np.ndarray  # (6890, 3, K ≥ 10) shape blend shapes
    posedirs: np.ndarray  # (6890, 3, 207) pose blend shapes
    J_regressor: np.ndarray  # (24, 6890) dense: joints = J_regressor @ vertices
    weights: np.ndarray  # (6890, 24) skinning weights
    kintree_table: np.ndarray  # (2, 24) int64: parents (root = 4294967295), joint ids
    faces: np.ndarray  # (F, 3) int64 vertex indices


# ------------------------------------------------------------------------------------------------
# Loading


class _ChumpyStandIn:
    """Takes the place of any ``chumpy`` class while unpickling; its array is ``state['x']``."""

    state = None

    def __setstate__(self, state):
        self.state = state

    @property
    def x(self):
        return self.state.get("x") if isinstance(self.state, dict) else None


class _RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.qualified_name = f"{module}.{name}"


_SAFE_BUILTINS = {
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("__builtin__", "object"): object, ("builtins", "object"): object,
    ("__builtin__", "set"): set, ("builtins", "set"): set,
    ("__builtin__", "frozenset"): frozenset, ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): codecs.encode,  # bytes in protocol-2 pickles written by Python 3
}
# NumPy's array/dtype/scalar reconstructors: (submodule below numpy[._core|.core], name).
_NUMPY_NAMES = {("", "ndarray"), ("", "dtype"), (".multiarray", "_reconstruct"),
                (".multiarray", "scalar"), (".numeric", "_frombuffer")}
_SPARSE_BASES = tuple(getattr(scipy.sparse, n) for n in ("spmatrix", "sparray")
                      if hasattr(scipy.sparse, n))


def _numpy_global(submodule: str, name: str):
    if not submodule:
        return getattr(np, name)
    try:  # NumPy 2 moved numpy.core to numpy._core; old pickles name the former
        module = importlib.import_module("numpy._core" + submodule)
    except ImportError:
        module = importlib.import_module("numpy.core" + submodule)
    return getattr(module, name)


class _SMPLUnpickler(pickle.Unpickler):
    """Resolves only the globals an SMPL model file legitimately contains."""

    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if (module, name) in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[module, name]
        if module == "numpy" or module.startswith(("numpy.core.", "numpy._core.")):
            submodule = module.removeprefix("numpy").removeprefix("._core").removeprefix(".core")
            if (submodule, name) in _NUMPY_NAMES:
                return _numpy_global(submodule, name)
        if module == "scipy.sparse" or module.startswith("scipy.sparse."):
            cls = getattr(scipy.sparse, name, None)  # scipy.sparse.csc.csc_matrix → scipy.sparse.csc_matrix
            if isinstance(cls, type) and issubclass(cls, _SPARSE_BASES):
                return cls
        raise _RefusedGlobal(module, name)


def find_model_file(path: str | os.PathLike) -> Path:
    """A model file itself, or the first of `MODEL_FILE_NAMES` in a folder (or its ``smpl/``)."""
    path = Path(path)
    if path.is_dir():
        for folder in (path, path / "smpl"):
            for name in MODEL_FILE_NAMES:
                if (folder / name).is_file():
                    return folder / name
        raise UserError(f"body model folder {path}: holds none of {', '.join(MODEL_FILE_NAMES)}; "
                        f"{HOW_TO_GET}")
    if not path.is_file():
        raise UserError(f"body model {path}: no such file or folder; {HOW_TO_GET}")
    return path


def _read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = _SMPLUnpickler(f, encoding="latin1").load()
    except _RefusedGlobal as e:
        raise UserError(f"body model {path}: the pickle refers to {e.qualified_name}, which no SMPL model "
                        "file contains; refusing to load it (model files never run code here) — use the "
                        "official SMPL file") from None
    except OSError as e:
        raise UserError(f"body model {path}: cannot read it ({e.strerror}); check the path and "
                        "permissions") from None
    except Exception as e:  # any other failure of the unpickler means a damaged or foreign file
        raise UserError(f"body model {path}: not a readable SMPL .pkl ({type(e).__name__}: {e}); "
                        f"{HOW_TO_GET}") from None
    if not isinstance(data, dict):
        raise UserError(f"body model {path}: holds a {type(data).__name__}, not the dictionary of a SMPL "
                        f"model; {HOW_TO_GET}")
    return data


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except Exception as e:  # not a zip, object arrays (need pickle), truncated, …
        raise UserError(f"body model {path}: not a readable SMPL .npz ({e}); {HOW_TO_GET}") from None


def _as_array(path: Path, key: str, value) -> np.ndarray:
    if isinstance(value, _ChumpyStandIn):
        value = value.x
    if isinstance(value, _SPARSE_BASES):
        value = value.toarray()
    array = np.asarray(value) if value is not None else None
    if array is None or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise UserError(f"body model {path}: '{key}' holds no numeric array; the file is damaged or not "
                        f"a SMPL model — {HOW_TO_GET}")
    return array


def load_smpl_model(path: str | os.PathLike) -> SMPLModelData:
    """Read and check a SMPL ``.pkl``/``.npz`` file, or a folder holding one (see `find_model_file`)."""
    path = find_model_file(path)
    raw = _read_npz(path) if path.suffix == ".npz" else _read_pickle(path)
    if "f" not in raw and "faces" in raw:
        raw["f"] = raw["faces"]
    expected = {
        "v_template": (NUM_VERTICES, 3), "shapedirs": (NUM_VERTICES, 3, None),
        "posedirs": (NUM_VERTICES, 3, NUM_POSE_FEATURES), "J_regressor": (NUM_JOINTS, NUM_VERTICES),
        "weights": (NUM_VERTICES, NUM_JOINTS), "kintree_table": (2, NUM_JOINTS), "f": (None, 3),
    }
    missing = [key for key in expected if key not in raw]
    if missing:
        raise UserError(f"body model {path}: missing {', '.join(missing)}, so it is not a SMPL model file; "
                        f"{HOW_TO_GET}")
    arrays = {}
    for key, shape in expected.items():
        array = _as_array(path, key, raw[key])
        if array.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, array.shape)):
            want = "(" + ", ".join("N" if n is None else str(n) for n in shape) + ")"
            raise UserError(f"body model {path}: '{key}' has shape {array.shape}, SMPL needs {want}; pass "
                            "the SMPL body model (not SMPL-H, SMPL-X or MANO)")
        if not np.isfinite(array).all():
            raise UserError(f"body model {path}: '{key}' contains NaN or inf; the file is damaged — "
                            f"{HOW_TO_GET}")
        arrays[key] = array
    if arrays["shapedirs"].shape[2] < NUM_BETAS:
        raise UserError(f"body model {path}: 'shapedirs' has {arrays['shapedirs'].shape[2]} shape "
                        f"components, k2m needs at least {NUM_BETAS}; {HOW_TO_GET}")
    kintree = arrays["kintree_table"].astype(np.int64)
    if list(kintree[0, 1:]) != list(PARENTS[1:]):
        raise UserError(f"body model {path}: its kinematic tree is not SMPL's 24-joint tree; pass the SMPL "
                        "body model (not SMPL-H, SMPL-X or MANO)")
    faces = arrays["f"]
    if faces.size and (faces.min() < 0 or faces.max() >= NUM_VERTICES or (faces != np.round(faces)).any()):
        raise UserError(f"body model {path}: 'f' holds indices that are not vertices 0…{NUM_VERTICES - 1}; "
                        f"the file is damaged — {HOW_TO_GET}")
    floats = {key: arrays[key].astype(np.float64) for key in
              ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")}
    return SMPLModelData(**floats, kintree_table=kintree, faces=faces.astype(np.int64))


# ------------------------------------------------------------------------------------------------
# A generated SMPL-format model (never the licensed one), for tests and benchmarks

# Capsule radius (m) of the bone that ends at each joint (index = child joint; 0 has no bone).
_BONE_RADIUS = (0.0, 0.085, 0.085, 0.11, 0.06, 0.06, 0.12, 0.05, 0.05, 0.13, 0.045, 0.045,
                0.055, 0.06, 0.06, 0.05, 0.05, 0.05, 0.042, 0.042, 0.035, 0.035, 0.035, 0.035)
_RING = 8  # vertices around each joint that the regressor averages (their centroid is the joint)
_HEAD = 15
_HEAD_CENTRE, _HEAD_AXES = (0.0, 0.06, 0.0), (0.07, 0.11, 0.09)  # ellipsoid, head-joint frame
_SPINE1 = 3  # the pelvis ring sits at the start of the pelvis → spine1 bone


def _rest_joints() -> np.ndarray:
    joints = np.array(REST_OFFSETS, dtype=np.float64)
    for j in range(1, NUM_JOINTS):
        joints[j] += joints[PARENTS[j]]
    return joints


def _capsule(rng: np.random.Generator, start: np.ndarray, end: np.ndarray, radius: float, n: int,
             rings: tuple[float, ...]) -> np.ndarray:
    """``n`` points uniform on the capsule around ``start → end``, then for each fraction in
    ``rings`` a ring of `_RING` evenly spaced points around the axis there (centroid on the axis)."""
    length = np.linalg.norm(end - start)
    axis = (end - start) / length
    u = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    # Uniform on a capsule: the position along the axis is uniform over [−r, L + r] (Archimedes).
    along = rng.uniform(-radius, length + radius, n)
    beyond_end = np.maximum(np.maximum(-along, along - length), 0)
    rho = np.sqrt(np.maximum(radius**2 - beyond_end**2, 0))
    theta = rng.uniform(0, 2 * np.pi, n)
    ring_theta = rng.uniform(0, 2 * np.pi) + np.arange(_RING) * 2 * np.pi / _RING
    along = np.concatenate([along, np.repeat(np.array(rings) * length, _RING)])
    rho = np.concatenate([rho, np.full(_RING * len(rings), radius)])
    theta = np.concatenate([theta, np.tile(ring_theta, len(rings))])
    around = np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * v
    return start + along[:, None] * axis + rho[:, None] * around


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of ``points (N, 3)`` to each segment ``a (J, 3)``–``b (J, 3)`` → ``(N, J)``."""
    ab = b - a
    t = np.einsum("njk,jk->nj", points[:, None] - a, ab) / np.maximum((ab * ab).sum(-1), 1e-12)
    closest = a + t.clip(0, 1)[..., None] * ab
    return np.linalg.norm(points[:, None] - closest, axis=-1)


def _outward_hull(points: np.ndarray) -> np.ndarray:
    """Convex-hull triangles ``(F, 3)`` wound counter-clockwise seen from outside, as SMPL's are
    (qhull's simplices come in either order; renderers cull back faces by winding)."""
    faces = ConvexHull(points).simplices
    tri = points[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    inward = (normals * (tri.mean(axis=1) - points.mean(axis=0))).sum(-1) < 0
    faces[inward] = faces[inward][:, ::-1]
    return faces


def random_smpl_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A plausible generated body in SMPL's format: capsules around the bones of the skeleton rest
    pose (docs/design.md#ref-smpl), a head ellipsoid with the 5 face vertices where the skeleton backend puts
    them, and a regressor whose joints are the rest joints. Float values are float32-representable,
    so readers that convert to float32 (smplx) see exactly the same model."""
    rng = np.random.default_rng(seed)
    joints = _rest_joints()
    bones = range(1, NUM_JOINTS)  # bone j: PARENTS[j] → j
    lengths = np.array([np.linalg.norm(joints[j] - joints[PARENTS[j]]) for j in bones])
    radii = np.array(_BONE_RADIUS[1:])
    areas = np.append(2 * np.pi * radii * lengths + 4 * np.pi * radii**2,
                      4 * np.pi * np.prod(_HEAD_AXES) ** (2 / 3))  # capsules, then the head
    free = NUM_VERTICES - NUM_JOINTS * _RING - len(FACE_VERTEX_IDS)
    counts = np.floor(areas / areas.sum() * free).astype(int)
    counts[np.argmax(counts)] += free - counts.sum()

    # One convex point cloud per bone (its ring of joint j last; spine1's bone also carries the
    # pelvis ring) and the head; each cloud's convex hull gives its faces.
    groups, rings, first = [], {}, 0
    for j, n in zip(bones, counts):
        at = (1.0, 0.0) if j == _SPINE1 else (1.0,)
        groups.append(_capsule(rng, joints[PARENTS[j]], joints[j], _BONE_RADIUS[j], n, at))
        for k, joint in enumerate((j, 0) if j == _SPINE1 else (j,)):
            rings[joint] = first + n + k * _RING + np.arange(_RING)
        first += len(groups[-1])
    direction = rng.normal(size=(counts[-1], 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    head_centre = joints[_HEAD] + np.array(_HEAD_CENTRE)
    groups.append(np.concatenate([head_centre + direction * np.array(_HEAD_AXES),
                                  joints[_HEAD] + np.array(FACE_OFFSETS)]))

    # Vertex ids: the face points (generated last) take SMPL's face ids, the others the rest in order.
    new_id = np.concatenate([np.setdiff1d(np.arange(NUM_VERTICES), FACE_VERTEX_IDS), FACE_VERTEX_IDS])
    v_template = np.empty((NUM_VERTICES, 3))
    v_template[new_id] = np.concatenate(groups)
    offsets = np.cumsum([0] + [len(g) for g in groups])
    faces = np.concatenate([new_id[_outward_hull(g) + o] for g, o in zip(groups, offsets)])
    J_regressor = np.zeros((NUM_JOINTS, NUM_VERTICES))
    for joint, ids in rings.items():
        J_regressor[joint, new_id[ids]] = 1 / _RING

    # Skinning: joint k moves the segment from k to its children's centroid (leaves: a short stub
    # continuing the parent bone); weights fall off with distance to it, the 4 nearest kept.
    ends = np.empty_like(joints)
    for k in range(NUM_JOINTS):
        children = [c for c in range(NUM_JOINTS) if PARENTS[c] == k]
        if children:
            ends[k] = joints[children].mean(0)
        else:
            stub = joints[k] - joints[PARENTS[k]]
            ends[k] = joints[k] + 0.08 * stub / np.linalg.norm(stub)
    logits = -(_segment_distance(v_template, joints, ends) / 0.04) ** 2
    logits[logits < np.sort(logits, axis=1)[:, -4:-3]] = -np.inf
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)

    # Shape: β₀ scales about the origin (height), β₁ widens, the rest small noise;
    # pose blend shapes small noise (a few cm at extreme poses).
    shapedirs = rng.normal(0, 0.002, (NUM_VERTICES, 3, NUM_BETAS))
    shapedirs[:, :, 0] += 0.03 * v_template
    shapedirs[:, :, 1] += 0.02 * v_template * np.array([1.0, 0.0, 1.0])
    posedirs = rng.normal(0, 5e-4, (NUM_VERTICES, 3, NUM_POSE_FEATURES))
    kintree_table = np.array([[ROOT_PARENT, *PARENTS[1:]], list(range(NUM_JOINTS))], dtype=np.int64)

    def f32(a):  # float32-representable float64 (see the docstring)
        return a.astype(np.float32).astype(np.float64)

    return {"v_template": f32(v_template), "shapedirs": f32(shapedirs), "posedirs": f32(posedirs),
            "J_regressor": f32(J_regressor), "weights": f32(weights), "kintree_table": kintree_table,
            "f": faces.astype(np.uint32), "J": f32(J_regressor @ v_template),
            "bs_type": "lrotmin", "bs_style": "lbs"}


@contextmanager
def _fake_chumpy():
    """Register a minimal ``chumpy.ch.Ch`` so pickles reference it as the official files do."""

    class Ch:
        def __init__(self, x):
            # The attributes a real chumpy.Ch pickles (its __getstate__ drops _parents and _cache).
            self.__dict__.update(_dirty_vars=set(), _itr=None, _depends_on_deps={}, _make_dense=False,
                                 _make_sparse=False, x=x)

        def __reduce__(self):  # the copy_reg form found in the official Python-2 files
            return copyreg._reconstructor, (Ch, object, None), self.__dict__

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    package, module = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    module.Ch, package.ch = Ch, module
    saved = {name: sys.modules.get(name) for name in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": package, "chumpy.ch": module})
    try:
        yield Ch
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def write_random_smpl_model(path: str | os.PathLike, seed: int = 0, *, chumpy_style: bool = False) -> Path:
    """Write a generated SMPL-format model (see `random_smpl_arrays`) to ``path``.

    ``.npz`` → plain arrays. Otherwise a protocol-2 pickle that ``smplx.SMPL`` reads, with
    ``J_regressor`` as a scipy ``csc_matrix`` like the official files; ``chumpy_style`` stores the
    dense arrays as ``chumpy.ch.Ch`` objects, as the official files do.
    """
    path = Path(path)
    arrays = random_smpl_arrays(seed)
    if path.suffix == ".npz":
        np.savez(path, **{k: v for k, v in arrays.items() if isinstance(v, np.ndarray)})
        return path
    arrays["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    if not chumpy_style:
        with open(path, "wb") as f:
            pickle.dump(arrays, f, protocol=2)
        return path
    with _fake_chumpy() as Ch:
        for key in ("v_template", "shapedirs", "posedirs", "weights", "J"):
            arrays[key] = Ch(arrays[key])
        with open(path, "wb") as f:
            pickle.dump(arrays, f, protocol=2)
    return path
