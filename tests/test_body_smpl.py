"""The `smpl` backend against smplx on generated SMPL-format files (never the licensed model)."""

import pickle
import sys

import numpy as np
import pytest
import smplx
import torch

from k2m_core.body import SMPL_DIR_ENV, load_body_model
from k2m_core.body.kinematics import COCO_FROM_JOINT
from k2m_core.body.smpl import SMPLBody
from k2m_core.body.smpl_file import (
    FACE_VERTEX_IDS, MODEL_FILE_NAMES, load_smpl_model, random_smpl_arrays, write_random_smpl_model,
)
from k2m_core.errors import UserError
from k2m_core.rotations import axis_angle_to_matrix

SMPLX_FACE_JOINTS = [24, 26, 25, 28, 27]  # smplx joints 24–28 are nose, reye, leye, rear, lear
TOL = 1e-5  # metres (docs/design.md#body-models)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smpl")
    write_random_smpl_model(folder / "SMPL_NEUTRAL.pkl", seed=0)
    write_random_smpl_model(folder / "chumpy.pkl", seed=0, chumpy_style=True)
    write_random_smpl_model(folder / "model.npz", seed=0)
    return folder


@pytest.fixture(scope="session")
def model_file(model_dir):
    return model_dir / "SMPL_NEUTRAL.pkl"


@pytest.fixture(scope="session")
def reference(model_file):
    return {dtype: smplx.SMPL(str(model_file), dtype=dtype) for dtype in (torch.float64, torch.float32)}


def random_inputs(batch, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    axis_angle = torch.randn(batch, 24, 3, generator=g, dtype=dtype)  # angles up to ~π and beyond
    betas = 2 * torch.randn(batch, 10, generator=g, dtype=dtype)
    transl = torch.randn(batch, 3, generator=g, dtype=dtype)
    return axis_angle, betas, transl


def smplx_forward(ref, rotmats, betas, transl):
    return ref(betas=betas, global_orient=rotmats[:, :1], body_pose=rotmats[:, 1:], transl=transl,
               pose2rot=False)


@pytest.mark.parametrize("batch,seed", [(1, 0), (7, 1), (64, 2)])
def test_fast_path_equals_smplx(model_file, reference, batch, seed):
    body = SMPLBody.from_path(model_file, dtype=torch.float64)
    axis_angle, betas, transl = random_inputs(batch, seed)
    rotmats = axis_angle_to_matrix(axis_angle)
    out = body(rotmats, betas, transl)
    ref = smplx_forward(reference[torch.float64], rotmats, betas, transl)
    assert out.vertices is None
    assert out.joints.shape == (batch, 24, 3) and out.keypoints.shape == (batch, 17, 3)
    assert (out.joints - ref.joints[:, :24]).abs().max() <= TOL
    face = ref.vertices[:, list(FACE_VERTEX_IDS)]
    assert (out.keypoints[:, :5] - face).abs().max() <= TOL
    assert (out.keypoints[:, :5] - ref.joints[:, SMPLX_FACE_JOINTS]).abs().max() <= TOL
    for row, joint in COCO_FROM_JOINT.items():
        assert torch.equal(out.keypoints[:, row], out.joints[:, joint])
    assert torch.allclose(body.rest_joints(betas), reference[torch.float64].J_regressor @ (
        reference[torch.float64].forward_shape(betas).v_shaped), atol=TOL)


def test_axis_angle_entry_point_equals_smplx(model_file, reference):
    body = SMPLBody.from_path(model_file, dtype=torch.float64)
    axis_angle, betas, transl = random_inputs(16, 3)
    out = body.forward_axis_angle(axis_angle.reshape(16, 72), betas, transl)
    ref = reference[torch.float64](betas=betas, global_orient=axis_angle[:, 0],
                                   body_pose=axis_angle[:, 1:].reshape(16, 69), transl=transl)
    assert (out.joints - ref.joints[:, :24]).abs().max() <= TOL
    assert (out.keypoints[:, :5] - ref.vertices[:, list(FACE_VERTEX_IDS)]).abs().max() <= TOL


def test_float32_is_close(model_file, reference):
    body = SMPLBody.from_path(model_file)  # float32 by default
    axis_angle, betas, transl = random_inputs(32, 4)
    rotmats = axis_angle_to_matrix(axis_angle)
    exact = smplx_forward(reference[torch.float64], rotmats, betas, transl)
    out = body(rotmats.float(), betas.float(), transl.float(), with_vertices=True)
    ref32 = smplx_forward(reference[torch.float32], rotmats.float(), betas.float(), transl.float())
    assert out.joints.dtype == torch.float32
    assert (out.joints.double() - exact.joints[:, :24]).abs().max() <= TOL
    assert (out.keypoints[:, :5].double() - exact.vertices[:, list(FACE_VERTEX_IDS)]).abs().max() <= TOL
    assert (out.vertices - ref32.vertices).abs().max() <= TOL


def test_with_vertices_equals_smplx(model_file, reference):
    body = SMPLBody.from_path(model_file, dtype=torch.float64)
    axis_angle, betas, transl = random_inputs(5, 5)
    rotmats = axis_angle_to_matrix(axis_angle)
    out = body(rotmats, betas, transl, with_vertices=True)
    ref = smplx_forward(reference[torch.float64], rotmats, betas, transl)
    assert out.vertices.shape == (5, 6890, 3)
    assert (out.vertices - ref.vertices).abs().max() <= TOL
    fast = body(rotmats, betas, transl)
    assert torch.allclose(fast.keypoints, out.keypoints) and torch.allclose(fast.joints, out.joints)
    assert body.has_mesh and body.name == "smpl"
    assert torch.equal(body.faces, reference[torch.float64].faces_tensor)


def test_dtype_and_device_moves(model_file):
    body = SMPLBody.from_path(model_file).to(torch.float64)
    assert body.rest_template.dtype == torch.float64 and body.faces.dtype == torch.long
    axis_angle, betas, transl = random_inputs(2, 6)
    assert body(axis_angle_to_matrix(axis_angle), betas, transl).joints.dtype == torch.float64
    assert body.state_dict() == {}  # the licensed model never lands in a checkpoint


def test_generated_model_matches_the_skeleton_rest_pose(model_file):
    from k2m_core.body.skeleton import SkeletonBody

    body = SMPLBody.from_path(model_file)
    zeros = torch.zeros(1, 10)
    assert torch.allclose(body.rest_joints(zeros), SkeletonBody().rest_joints(zeros), atol=1e-5)
    data = load_smpl_model(model_file)
    assert np.allclose(data.weights.sum(1), 1, atol=1e-6) and (data.weights >= 0).all()
    assert np.allclose(data.J_regressor.sum(1), 1) and (data.J_regressor >= 0).all()
    assert data.faces.min() >= 0 and data.faces.max() < 6890 and data.faces.shape[1] == 3


def test_chumpy_pickle_loads_without_chumpy(model_dir, monkeypatch):
    assert "chumpy" not in sys.modules
    monkeypatch.setitem(sys.modules, "chumpy", None)  # any import of chumpy now fails
    with pytest.raises(ImportError):
        import chumpy  # noqa: F401
    assert b"chumpy.ch\nCh" in (model_dir / "chumpy.pkl").read_bytes()
    plain = load_smpl_model(model_dir / "SMPL_NEUTRAL.pkl")
    chumpy_style = load_smpl_model(model_dir / "chumpy.pkl")
    for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "faces"):
        assert np.array_equal(getattr(plain, name), getattr(chumpy_style, name)), name


def test_numpy1_pickle_names_load(model_dir, tmp_path):
    # Files pickled under NumPy 1 name numpy.core.multiarray; NumPy 2 only has numpy._core.
    old = (model_dir / "chumpy.pkl").read_bytes().replace(b"numpy._core.", b"numpy.core.")
    (tmp_path / "old.pkl").write_bytes(old)
    assert np.array_equal(load_smpl_model(tmp_path / "old.pkl").posedirs,
                          load_smpl_model(model_dir / "chumpy.pkl").posedirs)


def test_npz_and_folder_loading(model_dir, tmp_path):
    npz, pkl = load_smpl_model(model_dir / "model.npz"), load_smpl_model(model_dir / "SMPL_NEUTRAL.pkl")
    for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "faces"):
        assert np.array_equal(getattr(npz, name), getattr(pkl, name)), name
    assert load_smpl_model(model_dir).v_template.shape == (6890, 3)  # the folder → SMPL_NEUTRAL.pkl
    official = tmp_path / "smpl" / MODEL_FILE_NAMES[-1]  # official long name, in a smpl/ subfolder
    official.parent.mkdir()
    official.write_bytes((model_dir / "chumpy.pkl").read_bytes())
    assert np.array_equal(load_smpl_model(tmp_path).weights, pkl.weights)


def test_load_body_model(model_dir, monkeypatch):
    body = load_body_model(model_dir / "model.npz")
    assert isinstance(body, SMPLBody)
    monkeypatch.setenv(SMPL_DIR_ENV, str(model_dir))
    body = load_body_model("smpl")
    assert isinstance(body, SMPLBody) and body.faces.shape[1] == 3
    monkeypatch.delenv(SMPL_DIR_ENV)
    with pytest.raises(UserError, match=SMPL_DIR_ENV):
        load_body_model("smpl")


def test_missing_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_body_model(tmp_path / "nowhere.pkl")
    with pytest.raises(UserError, match="no such file"):
        load_smpl_model(tmp_path / "nowhere.pkl")
    with pytest.raises(UserError, match="SMPL_NEUTRAL.pkl"):
        load_smpl_model(tmp_path)  # an empty folder


def write_pickle(path, data):
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=2)
    return path


def test_missing_key_and_wrong_shape_are_user_errors(tmp_path):
    arrays = random_smpl_arrays(1)
    incomplete = {k: v for k, v in arrays.items() if k != "posedirs"}
    with pytest.raises(UserError, match="missing posedirs"):
        load_smpl_model(write_pickle(tmp_path / "incomplete.pkl", incomplete))
    smplh_like = dict(arrays, J_regressor=np.zeros((52, 6890)))
    with pytest.raises(UserError, match=r"'J_regressor' has shape \(52, 6890\)"):
        load_smpl_model(write_pickle(tmp_path / "smplh.pkl", smplh_like))
    with pytest.raises(UserError, match="not the dictionary"):
        load_smpl_model(write_pickle(tmp_path / "list.pkl", [1, 2]))
    (tmp_path / "garbage.pkl").write_bytes(b"\x80\x02not a pickle")
    with pytest.raises(UserError, match="not a readable SMPL"):
        load_smpl_model(tmp_path / "garbage.pkl")


def reduce_pickle(module: str, name: str, argument: str) -> bytes:
    """A protocol-2 pickle that calls ``module.name(argument)`` when loaded by plain pickle."""
    arg = argument.encode()
    return (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"
            + b"X" + len(arg).to_bytes(4, "little") + arg + b"\x85R.")


@pytest.mark.parametrize("module,name,argument", [
    ("os", "system", "touch {marker}"),
    ("posix", "system", "touch {marker}"),
    ("builtins", "exec", "open({marker!r}, 'w').close()"),
    ("__builtin__", "eval", "open({marker!r}, 'w')"),
    ("numpy", "save", "{marker}"),  # numpy, but not an array reconstructor
    ("scipy.sparse", "save_npz", "{marker}"),  # scipy.sparse, but not a sparse matrix class
    ("chumpy.ch", "Ch", "{marker}"),  # chumpy names resolve to an inert stand-in that takes no arguments
])
def test_malicious_pickle_is_refused_without_running_code(tmp_path, module, name, argument):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pkl"
    path.write_bytes(reduce_pickle(module, name, argument.format(marker=marker)))
    with pytest.raises(UserError, match="evil.pkl"):
        load_smpl_model(path)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned.npy").exists()
    assert not (tmp_path / "pwned.npz").exists()
