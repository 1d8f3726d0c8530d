"""Clips seen again from the front (`k2m data front`), and text models trained on them."""

import math
from dataclasses import replace
import shutil

import numpy as np
import pytest
import torch

from k2m_core.body import load_body_model
from k2m_core.data.dataset import Dataset
from k2m_core.rotations import axis_angle_to_matrix
from k2m_core.tokenizer.bodyframe import pitch_matrix, yaw_matrix
from k2m_core.tokenizer.framing import CANONICAL_SIZE
from k2m_core.tokenizer.front import facing_yaw, seen_from_front, turn_motion, turn_points
from k2m_core.tokenizer.model import SMPLMotion

BODY = load_body_model()
LEFT_HIP, RIGHT_HIP = 11, 12  # COCO-17


def filmed(facing: float, frames: int = 12, travel=(0.0, 0.0, 0.0), seed: int = 0) -> tuple[SMPLMotion, torch.Tensor]:
    """A body of facing yaw ``facing`` at frame 0 (`facing_yaw`'s sense), turning a little and
    travelling ``travel`` metres over the clip in the camera frame, 5 m in front of the camera;
    returns its motion and COCO-17 keypoints in 3D ``(1, F, 17, 3)``."""
    gen = torch.Generator().manual_seed(seed)
    pose = axis_angle_to_matrix(0.3 * torch.randn(frames, 23, 3, generator=gen))
    turn = torch.linspace(0, 0.4, frames)
    orient = yaw_matrix(-(facing + turn)) @ pitch_matrix(torch.tensor(math.pi))  # faces the camera at facing 0
    rotmats = torch.cat([orient[:, None], pose], dim=1)[None]
    betas = 0.5 * torch.randn(1, 10, generator=gen)
    transl = torch.tensor([0.0, 0.0, 5.0]) + torch.linspace(0, 1, frames)[:, None] * torch.tensor(travel)
    out = BODY(rotmats[0], betas.expand(frames, -1), transl)
    motion = SMPLMotion(rotmats=rotmats, betas=betas, transl=transl[None], joints=out.joints[None])
    return motion, out.keypoints[None]


def front_of(motion: SMPLMotion, keypoints3d: torch.Tensor, focal: float = 1920.0):
    valid = torch.ones(motion.joints.shape[:2], dtype=torch.bool)
    return seen_from_front(motion.joints, keypoints3d, motion.rotmats[:, 0, 0], valid, torch.tensor([focal]))


def test_facing_yaw_follows_the_rigs_convention():
    front = filmed(0.0)[0]
    assert float(facing_yaw(front.rotmats[:, 0, 0])) == pytest.approx(0.0, abs=1e-5)
    # Facing yaw −π/2 shows the camera the body's left side: its left hip is the nearer one.
    left = filmed(-math.pi / 2)[0]
    assert float(facing_yaw(left.rotmats[:, 0, 0])) == pytest.approx(-math.pi / 2, abs=1e-5)
    assert float(left.joints[0, 0, 1, 2]) < float(left.joints[0, 0, 2, 2])  # SMPL left hip nearer


def test_turning_a_motion_turns_its_facing_and_keeps_it_a_body():
    motion, _ = filmed(0.4, travel=(1.0, 0.0, -2.0))
    turned = turn_motion(motion, torch.tensor([-1.1]), BODY)
    assert float(facing_yaw(turned.rotmats[:, 0, 0])) == pytest.approx(0.4 - 1.1, abs=1e-5)
    # Exact: forward kinematics of the turned parameters gives the turned joints.
    again = BODY(turned.rotmats[0], turned.betas.expand(len(turned.transl[0]), -1), turned.transl[0]).joints
    torch.testing.assert_close(again, turned.joints[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(turned.joints[:, 0, 0], motion.joints[:, 0, 0])  # turned about the first pelvis
    heights = motion.joints[..., 1] - motion.joints[:, :1, :1, 1]
    torch.testing.assert_close(turned.joints[..., 1] - turned.joints[:, :1, :1, 1], heights, atol=1e-5, rtol=0)


def test_a_motion_filmed_from_any_side_is_seen_alike_from_the_front():
    motion, points = filmed(0.0, travel=(0.8, 0.0, 0.0))
    reference, yaw, _ = front_of(motion, points)
    assert float(yaw) == pytest.approx(0.0, abs=1e-5)
    for side in (-math.pi / 2, 2.0, math.pi):
        turned = turn_motion(motion, torch.tensor([side]), BODY)
        kp3 = turn_points(points, torch.tensor([side]), motion.joints[:, 0, 0])
        seen, yaw, _ = front_of(turned, kp3)
        assert math.remainder(float(yaw) - side, 2 * math.pi) == pytest.approx(0.0, abs=1e-4)
        np.testing.assert_allclose(seen.numpy(), reference.numpy(), atol=1e-2)
    # Facing the camera: the body's left hip is on the image's right.
    assert float(reference[0, 0, LEFT_HIP, 0]) > float(reference[0, 0, RIGHT_HIP, 0])
    np.testing.assert_array_equal(reference[0, :, 17].numpy(), np.tile([*CANONICAL_SIZE, 1.0], (12, 1)))


def test_a_walk_towards_the_camera_stays_in_front_of_it_and_in_the_frame():
    motion, points = filmed(math.pi / 2, frames=30, travel=(-4.5, 0.0, -4.0))  # will walk at the camera
    seen, _, offset = front_of(motion, points)
    assert bool((seen[0, :, :17, 2] > 0).all())  # nothing behind the camera or outside the frame
    width, height = CANONICAL_SIZE
    assert float(seen[0, :, :17, 0].min()) >= 0 and float(seen[0, :, :17, 0].max()) <= width
    assert float(seen[0, :, :17, 1].min()) >= 0 and float(seen[0, :, :17, 1].max()) <= height
    assert float(offset[0, 2]) > 0  # moved back
    # The far side of the body gets the lower confidence, as the corpus's estimator gives it.
    assert len(torch.unique(seen[0, :, :17, 2])) == 2


def run_ok(*args):
    """`k2m ARGS…` in this process, which must succeed (for module fixtures)."""
    from k2m_cli.main import run

    with pytest.raises(SystemExit) as info:
        run(["-q", *map(str, args)])
        raise SystemExit(0)
    assert info.value.code == 0, args


@pytest.fixture(scope="module")
def front_models(tmp_path_factory, synth_corpus, model_dir):
    """`model_dir`'s tokenizer, the corpus seen from the front by it, and tiny text models trained
    on that."""
    root = tmp_path_factory.mktemp("front")
    data = shutil.copy(synth_corpus / "dataset.h5", root / "data.h5")
    run_ok("data", "front", data, "--tokenizer", model_dir / "vq", "--out", root / "front.h5", "--device", "cpu")
    run_ok("data", "tokenize", root / "front.h5", "--tokenizer", model_dir / "vq")
    tiny = ["--preset", "tiny", "--steps", "4", "--set", "train.eval_every=1000"]
    for kind in ("transformer", "residual", "length"):
        run_ok("train", kind, "--data", root / "front.h5", "--tokenizer", model_dir / "vq", "--out", root / kind,
               "--encoder", "words", *tiny)
    shutil.copytree(model_dir / "vq", root / "vq")
    return root


def test_the_front_dataset_keeps_clips_captions_splits_and_turns_the_truth_rigidly(front_models, synth_corpus):
    original, front = Dataset(synth_corpus / "dataset.h5"), Dataset(front_models / "front.h5")
    assert front.attrs["view"] == "front" and front.attrs["view_tokenizer"]
    assert front.ids == original.ids and front.all_captions == original.all_captions
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(front.splits[split], original.splits[split])
    np.testing.assert_array_equal(front.lengths, original.lengths)
    moved = 0
    for i in range(len(front)):
        kp = front.keypoints(i)
        np.testing.assert_array_equal(kp[:, 17], np.tile([*CANONICAL_SIZE, 1.0], (len(kp), 1)))
        truth, turned = original.ground_truth("joints", i), front.ground_truth("joints", i)
        # A turn about the vertical and a shift: heights and every distance stay.
        np.testing.assert_allclose(turned[..., 1] - turned[:1, :1, 1], truth[..., 1] - truth[:1, :1, 1], atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(turned - turned[:1, :1], axis=-1),
                                   np.linalg.norm(truth - truth[:1, :1], axis=-1), atol=1e-4)
        moved += not np.allclose(turned, truth, atol=1e-2)
    assert moved == len(front)  # every clip is at least moved onto the camera axis


def test_text_models_on_front_tokens_generate_facing_the_camera_and_turn_for_a_view(front_models, k2m, tmp_path):
    from k2m_core.generate import load_model
    from k2m_core.loading import read_t2m_config

    assert read_t2m_config(front_models / "transformer").tokens.view == "front"
    sampler = load_model(front_models, device=torch.device("cpu"))
    assert sampler.takes_view
    plain = sampler.generate(["a person walks"] * 2, [24, 24], seed=3).motion
    turned = sampler.generate(["a person walks"] * 2, [24, 24], seed=3, yaw=torch.tensor([-math.pi / 2, 1.0])).motion
    change = facing_yaw(turned.rotmats[:, 0, 0]) - facing_yaw(plain.rotmats[:, 0, 0])
    np.testing.assert_allclose(np.remainder(change.numpy() + math.pi, 2 * math.pi) - math.pi, [-math.pi / 2, 1.0],
                               atol=1e-4)
    torch.testing.assert_close(turned.joints[:, 0, 0], plain.joints[:, 0, 0], atol=1e-5, rtol=0)
    result = k2m("gen", "a person walks", "--model", front_models, "--frames", "60", "--view", "left",
                 "--out", tmp_path / "out", "--device", "cpu")
    assert result.code == 0, result.err
    assert list((tmp_path / "out").glob("*.npz"))


def test_models_of_different_views_are_not_mixed(front_models, model_dir, k2m, tmp_path):
    mixed = tmp_path / "mixed"
    for name in ("vq", "transformer", "length"):
        shutil.copytree(front_models / name, mixed / name)
    shutil.copytree(model_dir / "residual", mixed / "residual")  # trained on the clips as filmed
    result = k2m("gen", "a person walks", "--model", mixed, "--frames", "60", "--out", tmp_path / "out",
                 "--device", "cpu")
    assert result.code == 2
    assert "front view" in result.err and "camera view" in result.err


def test_front_refuses_an_existing_output_and_a_front_input(front_models, model_dir, k2m):
    result = k2m("data", "front", front_models / "data.h5", "--tokenizer", model_dir / "vq",
                 "--out", front_models / "front.h5")
    assert result.code == 2 and "already exists" in result.err and "--force" in result.err
    result = k2m("data", "front", front_models / "front.h5", "--tokenizer", model_dir / "vq",
                 "--out", front_models / "again.h5")
    assert result.code == 2 and "already seen from the front" in result.err
    assert not (front_models / "again.h5").exists()


def test_mirroring_a_front_dataset_keeps_it_a_front_view(front_models, k2m):
    out = front_models / "mirrored.h5"
    assert k2m("data", "mirror", front_models / "front.h5", "--out", out).code == 0
    assert Dataset(out).attrs["view"] == "front"


def test_text_use_turns_clips_as_filmed_for_a_front_model_and_refuses_the_reverse(front_models, model_dir,
                                                                                  synth_corpus, k2m, tmp_path):
    from k2m_core.data.front import front_tokens
    from k2m_core.loading import load_tokenizer
    from k2m_core.t2m.data import read_token_cache
    from k2m_core.t2m.tokens import token_spec

    tokenizer = load_tokenizer(model_dir / "vq")
    original, front = Dataset(synth_corpus / "dataset.h5"), Dataset(front_models / "front.h5")
    clips = np.arange(len(original))
    cache = read_token_cache(front, replace(token_spec(tokenizer), view="front"))  # what `k2m data front` + tokenize wrote
    for clip, codes in zip(clips, front_tokens(tokenizer, original, clips, batch_size=5)):
        np.testing.assert_array_equal(codes, cache.clip(int(clip)))
    result = k2m("eval", "text-use", front_models, "--data", synth_corpus / "dataset.h5", "--swap", "left:right",
                 "--device", "cpu", "--no-generate", "--out", tmp_path / "tu.json")
    assert result.code == 0, result.err
    result = k2m("eval", "text-use", model_dir, "--data", front_models / "front.h5", "--swap", "left:right",
                 "--device", "cpu")
    assert result.code == 2 and "as filmed" in result.err
