import numpy as np
import pytest
import torch

from k2m_core import keypoints as kp
from k2m_core.errors import UserError


def test_make_clip_layout_and_missing():
    xy = np.full((4, 17, 2), 100.0)
    xy[1, 3] = np.nan
    conf = np.full((4, 17), 0.9)
    conf[2, 5] = np.inf
    clip = kp.make_clip(xy, conf, 1920, 1080)
    assert clip.shape == (4, 18, 3) and clip.dtype == np.float32
    assert (clip[:, 17] == [1920, 1080, 1]).all()
    assert clip[1, 3].tolist() == [0, 0, 0] and clip[2, 5, 2] == 0
    kp.validate_clip(clip)


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c[:, :17], "shape"),
    (lambda c: c.astype(np.float64), "float32"),
    (lambda c: np.where(np.arange(18)[None, :, None] == 2, np.nan, c).astype(np.float32), "non-finite"),
    (lambda c: c.__setitem__((0, 4, 2), 1.5) or c, "confidence"),
    (lambda c: c.__setitem__((1, 17, 0), 640) or c, "row 17"),
    (lambda c: c[:0], "no frames"),
])
def test_validate_rejects(mutate, message):
    clip = kp.make_clip(np.zeros((3, 17, 2)), np.ones((3, 17)), 1280, 720)
    with pytest.raises(UserError, match=message):
        kp.validate_clip(mutate(clip.copy()), "x.json")


def test_normalisation_numpy_and_torch_agree_and_invert():
    rng = np.random.default_rng(0)
    clip = kp.make_clip(rng.uniform(0, 1280, (5, 17, 2)), rng.uniform(0, 1, (5, 17)), 1280, 720)
    out = kp.normalise_for_encoder(clip, conf_threshold=0.5)
    assert out.shape == (5, 17, 3)
    expected_x = (clip[..., :17, 0] - 640) / 640
    keep = clip[..., :17, 2] >= 0.5
    np.testing.assert_allclose(out[..., 0], np.where(keep, expected_x, 0), atol=1e-6)
    assert (out[~keep] == 0).all()
    out_t = kp.normalise_for_encoder(torch.from_numpy(clip), conf_threshold=0.5)
    np.testing.assert_allclose(out_t.numpy(), out, atol=1e-6)
    x, y = kp.denormalise_xy(out[..., 0], out[..., 1], 1280.0, 720.0)
    np.testing.assert_allclose(np.stack([x, y], -1)[keep], clip[..., :17, :2][keep], atol=1e-3)
    # Portrait video: max(W, H) is the height.
    portrait = kp.make_clip(np.array([[[0.0, 0.0]] * 17]), np.ones((1, 17)), 720, 1280)
    assert np.allclose(kp.normalise_for_encoder(portrait)[0, 0, :2], [-360 / 640, -1.0])


def test_mirror_is_an_involution_that_swaps_sides():
    mirror = np.array(kp.MIRROR)
    assert (mirror[mirror] == np.arange(17)).all()
    for i, name in enumerate(kp.COCO17_NAMES):
        other = kp.COCO17_NAMES[mirror[i]]
        assert other == name.replace("left", "#").replace("right", "left").replace("#", "right")
