import torch

from k2m_core import camera


def test_projection_matches_eq3():
    points = torch.tensor([[0.5, -0.2, 10.0], [0.0, 0.0, 5.0], [1.0, 1.0, -2.0], [0.3, 0.1, 0.0]],
                          dtype=torch.float64)
    uv, in_front = camera.project(points, 1920.0, 1080.0)
    assert in_front.tolist() == [True, True, False, False]
    expected_u = 5000 * 0.5 / (10 + camera.EPS) + 960
    expected_v = 5000 * -0.2 / (10 + camera.EPS) + 540
    assert torch.allclose(uv[0], torch.tensor([expected_u, expected_v], dtype=torch.float64))
    assert torch.allclose(uv[1], torch.tensor([960.0, 540.0], dtype=torch.float64))
    assert torch.isfinite(uv).all()  # masked points still give finite numbers, never NaN


def test_projection_broadcasts_per_clip_sizes_and_is_differentiable():
    points = torch.randn(2, 7, 3, dtype=torch.float64) + torch.tensor([0, 0, 12.0], dtype=torch.float64)
    points.requires_grad_()
    width = torch.tensor([[1920.0], [720.0]], dtype=torch.float64)
    height = torch.tensor([[1080.0], [1280.0]], dtype=torch.float64)
    uv, _ = camera.project(points, width, height)
    assert uv.shape == (2, 7, 2)
    assert torch.allclose(uv[1, :, 0], 5000 * points[1, :, 0] / (points[1, :, 2] + camera.EPS) + 360)
    uv.sum().backward()
    assert torch.isfinite(points.grad).all()


def test_translation_parameterisation_round_trip_and_meaning():
    point = torch.tensor([[0.4, -0.3, 14.0], [-2.0, 1.0, 30.0]], dtype=torch.float64)
    uvs = camera.point_to_uvs(point, 1920.0, 1080.0)
    assert torch.allclose(camera.uvs_to_point(uvs, 1920.0, 1080.0), point)
    # (u, v) is where the point projects, in normalised units (max(W, H)/2 = 960 px).
    uv_px, _ = camera.project(point, 1920.0, 1080.0)
    assert torch.allclose(uvs[:, 0] * 960 + 960, uv_px[:, 0], atol=1e-3)
    assert torch.allclose(uvs[:, 1] * 960 + 540, uv_px[:, 1], atol=1e-3)
    assert torch.allclose(torch.exp(uvs[:, 2]), 5000 / point[:, 2])  # pixels per metre
