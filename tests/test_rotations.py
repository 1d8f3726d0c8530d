import math

import pytest
import torch

from k2m_core import rotations as rot

torch.manual_seed(0)


def random_axis_angle(n, dtype, max_angle=math.pi, seed=0):
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, dtype=dtype, generator=g), dim=-1)
    return axis * torch.rand(n, 1, dtype=dtype, generator=g) * max_angle


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_round_trips(dtype, tol):
    aa = random_axis_angle(20000, dtype, max_angle=math.pi - 1e-3)
    matrix = rot.axis_angle_to_matrix(aa)
    eye = torch.eye(3, dtype=dtype)
    assert (matrix @ matrix.transpose(-1, -2) - eye).abs().max() < tol
    assert torch.allclose(torch.linalg.det(matrix), torch.ones((), dtype=dtype), atol=tol)
    assert (rot.matrix_to_axis_angle(matrix) - aa).abs().max() < tol * 5
    assert (rot.rot6d_to_matrix(rot.matrix_to_rot6d(matrix)) - matrix).abs().max() < tol
    assert (rot.quaternion_to_axis_angle(rot.axis_angle_to_quaternion(aa)) - aa).abs().max() < tol * 5
    z, y, x = rot.matrix_to_euler_zyx(matrix).unbind(-1)
    about = [rot.axis_angle_to_matrix(torch.nn.functional.one_hot(torch.tensor(k), 3).to(dtype) * a[..., None])
             for k, a in ((2, z), (1, y), (0, x))]
    error = (about[0] @ about[1] @ about[2] - matrix).abs().amax((-1, -2))
    # Near pitch ±90° (gimbal lock) ZYX angles are ill-conditioned: rounding grows as 1/cos(pitch).
    well = y.cos().abs() > 1e-2
    assert error[well].max() < tol * 10 and error.max() < tol * 100


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-6, 1e-4, 1e-2, math.pi - 1e-2, math.pi - 1e-5, math.pi])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_edge_angles(angle, dtype):
    axis = torch.nn.functional.normalize(torch.randn(500, 3, dtype=dtype), dim=-1)
    aa = axis * angle
    matrix = rot.axis_angle_to_matrix(aa)
    back = rot.matrix_to_axis_angle(matrix)
    # Near π the axis sign is ambiguous: compare as rotations, and compare angles.
    assert (rot.axis_angle_to_matrix(back) - matrix).abs().max() < 1e-5
    assert (back.norm(dim=-1) - angle).abs().max() < 1e-5
    if angle < math.pi - 1e-3:
        assert (back - aa).abs().max() < 1e-5


def test_known_rotations():
    quarter_z = rot.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    assert torch.allclose(quarter_z @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    half_x = rot.axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0]))
    assert torch.allclose(half_x, torch.diag(torch.tensor([1.0, -1.0, -1.0])), atol=1e-6)
    # 6D is the first two columns.
    assert torch.allclose(rot.matrix_to_rot6d(quarter_z), torch.tensor([0.0, 1.0, 0.0, -1.0, 0.0, 0.0]), atol=1e-6)
    # ZYX Euler: R = Rz·Ry·Rx.
    angles = torch.tensor([0.3, -0.2, 1.1], dtype=torch.float64)
    expected = (rot.axis_angle_to_matrix(torch.tensor([0, 0, 0.3], dtype=torch.float64))
                @ rot.axis_angle_to_matrix(torch.tensor([0, -0.2, 0], dtype=torch.float64))
                @ rot.axis_angle_to_matrix(torch.tensor([1.1, 0, 0], dtype=torch.float64)))
    assert torch.allclose(rot.matrix_to_euler_zyx(expected), angles)


def test_6d_accepts_any_input_and_is_differentiable():
    raw = torch.randn(100, 6, dtype=torch.float64, requires_grad=True)
    matrix = rot.rot6d_to_matrix(raw)
    assert torch.allclose(matrix @ matrix.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(100, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(matrix), torch.ones(100, dtype=torch.float64))
    assert torch.autograd.gradcheck(rot.rot6d_to_matrix, (raw[:4].detach().requires_grad_(),))


@pytest.mark.parametrize("angle", [0.0, 1e-7, 0.5, math.pi - 0.1])
def test_gradients_finite_and_correct(angle):
    axis = torch.nn.functional.normalize(torch.randn(4, 3, dtype=torch.float64), dim=-1)
    aa = (axis * angle).requires_grad_()
    assert torch.autograd.gradcheck(rot.axis_angle_to_matrix, (aa,))
    assert torch.autograd.gradcheck(lambda a: rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(a)), (aa,))
