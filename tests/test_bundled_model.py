"""The bundled k2m-mini does what its model card promises: paraphrases of its training actions
move the body the way the action says (issue: "someone leaps", "a person hops up and down",
"a man walks slowly to the left"), and the root no longer jitters in depth."""

import numpy as np
import pytest
import torch

from k2m_core.export.world import camera_to_world
from k2m_core.generate import load_model, resolve_model
from k2m_core.rotations import axis_angle_to_matrix

SAMPLES = 6
FRAMES = 120
PROMPTS = ("a man jumps", "someone leaps", "a person hops up and down", "a man walks slowly to the left",
           "a person runs forward", "a person stands still")


def motion_attributes(poses: np.ndarray, joints: np.ndarray) -> dict[str, float]:
    """World-frame (z up) summary of one motion at 30 fps: pelvis height range (5–95 %), net
    displacement towards the subject's initial left, and the median frame-to-frame horizontal
    pelvis speed (m/s), which root jitter inflates."""
    pelvis = joints[:, 0]
    left = axis_angle_to_matrix(torch.from_numpy(poses[0, :3])).numpy()[:2, 0]  # body +x = its left
    left = left / max(np.linalg.norm(left), 1e-9)
    step_speed = np.linalg.norm(np.diff(pelvis[:, :2], axis=0), axis=1) * 30
    return {"lift": float(np.percentile(pelvis[:, 2], 95) - np.percentile(pelvis[:, 2], 5)),
            "left": float((pelvis[-1, :2] - pelvis[0, :2]) @ left),
            "speed": float(np.median(step_speed))}


@pytest.fixture(scope="module")
def attributes() -> dict[str, list[dict[str, float]]]:
    torch.manual_seed(0)
    sampler = load_model(resolve_model(None))
    generated = sampler.generate([p for p in PROMPTS for _ in range(SAMPLES)], [FRAMES] * (len(PROMPTS) * SAMPLES),
                                 seed=0)
    body = sampler.tokenizer.body.double()
    motion = generated.motion
    result = {prompt: [] for prompt in PROMPTS}
    for i in range(len(PROMPTS) * SAMPLES):
        poses, _, joints = camera_to_world(motion.poses()[i].double().numpy(), motion.transl[i].double().numpy(),
                                           motion.betas[i].double().numpy(), body, up="z")
        result[PROMPTS[i // SAMPLES]].append(motion_attributes(poses, joints))
    return result


def mean(attributes, prompt: str, key: str) -> float:
    return float(np.mean([a[key] for a in attributes[prompt]]))


def test_motion_attributes_measure_what_they_say():
    frames = np.arange(FRAMES)
    joints = np.zeros((FRAMES, 24, 3))
    joints[:, 0, 0] = -0.02 * frames  # 0.6 m/s along −x …
    joints[:, 0, 2] = 0.9 + 0.3 * (np.sin(frames / 5) > 0)  # … hopping 0.3 m
    poses = np.zeros((FRAMES, 72))
    poses[0, :3] = [0.0, 0.0, np.pi]  # turned 180° about z: the body's left is −x
    a = motion_attributes(poses, joints)
    assert a["lift"] == pytest.approx(0.3) and a["left"] == pytest.approx(0.02 * (FRAMES - 1))
    assert a["speed"] == pytest.approx(0.6)
