"""`k2m gen` end to end with tiny models trained here on the synthetic corpus."""

import json
from dataclasses import replace

import numpy as np
import pytest

from k2m_core.export.amass import read_amass_npz


def test_gen_writes_requested_frames_reproducibly(k2m, model_dir, tmp_path):
    result = k2m("gen", "a man jumps", "someone waves", "--frames", "150", "--model", model_dir,
                 "--out", tmp_path / "a", "--seed", "3", "--json")
    assert result.code == 0, result.err
    records = json.loads(result.out)
    assert [r["frames"] for r in records] == [150, 150] and records[0]["prompt"] == "a man jumps"
    motion = read_amass_npz(tmp_path / "a" / "a_man_jumps_00.npz")
    assert motion["poses"].shape == (150, 72) and motion["fps"] == 30.0 and motion["text"] == "a man jumps"
    feet = motion["joints"][:, [7, 8, 10, 11], 2]  # z-up world
    assert abs(feet.min()) < 1e-4  # lowest foot on the ground
    bvh = (tmp_path / "a" / "a_man_jumps_00.bvh").read_text()
    assert "Frames: 150" in bvh
    again = k2m("gen", "a man jumps", "someone waves", "--frames", "150", "--model", model_dir,
                "--out", tmp_path / "b", "--seed", "3", "--format", "npz")
    assert again.code == 0
    np.testing.assert_array_equal(read_amass_npz(tmp_path / "b" / "a_man_jumps_00.npz")["poses"], motion["poses"])
    other = k2m("gen", "a man jumps", "--frames", "150", "--model", model_dir, "--out", tmp_path / "c", "--seed", "4")
    assert other.code == 0
    assert not np.array_equal(read_amass_npz(tmp_path / "c" / "a_man_jumps_00.npz")["poses"], motion["poses"])


def test_gen_lengths_from_estimator_and_prompt_file(k2m, model_dir, tmp_path):
    (tmp_path / "prompts.txt").write_text("a person walks #90\n\n// comment\nsomeone spins\n")
    result = k2m("gen", "--prompts", tmp_path / "prompts.txt", "--model", model_dir, "--out", tmp_path / "o",
                 "--num-samples", "2", "--json")
    assert result.code == 0, result.err
    records = json.loads(result.out)
    assert [r["sample"] for r in records] == [0, 1, 0, 1]
    assert records[0]["frames"] == records[1]["frames"] == 90
    assert all(60 <= r["frames"] <= 300 for r in records[2:])


@pytest.mark.parametrize("args,message", [
    (["--frames", "20"], "60–300"),
    (["--frames", "150", "--format", "fbx"], "--format"),
    (["--frames", "150", "--num-samples", "0"], "--num-samples"),
    (["--frames", "150", "--view", "lft"], "--view 'lft'"),
    (["--frames", "150", "--view", "left"], "tokens are in the camera frame"),
])
def test_gen_errors(k2m, model_dir, tmp_path, args, message):
    result = k2m("gen", "a man jumps", "--model", model_dir, "--out", tmp_path / "x", *args)
    assert result.code == 2 and message in result.err
    assert not (tmp_path / "x").exists()


def test_view_turns_body_frame_motion_before_the_camera(k2m, body_model_dir, tmp_path):
    hips = {}
    for view in ("front", "back", "left", "-90"):
        result = k2m("gen", "a man walks", "--frames", "60", "--model", body_model_dir, "--out", tmp_path / view,
                     "--view", view, "--format", "npz")
        assert result.code == 0, result.err
        joints = read_amass_npz(tmp_path / view / "a_man_walks_00.npz")["joints"]  # z-up world
        hips[view] = (joints[0, 1] - joints[0, 2])[:2]  # left − right hip, horizontal
    np.testing.assert_allclose(hips["back"], -hips["front"], atol=1e-4)  # the same motion, turned 180°
    np.testing.assert_allclose(hips["left"], hips["-90"], atol=1e-6)
    assert abs(float(np.dot(hips["left"], hips["front"]))) < 1e-3 * float(np.dot(hips["front"], hips["front"]))


def test_gen_needs_a_model_folder(k2m, tmp_path):
    result = k2m("gen", "a man jumps", "--model", tmp_path)
    assert result.code == 2 and "not a k2m model folder" in result.err


def test_model_names_resolve_to_bundled_folders(k2m, tmp_path, monkeypatch):
    import k2m_core.generate as generate

    bundled = tmp_path / "models"
    (bundled / "my-model" / "transformer").mkdir(parents=True)
    monkeypatch.setattr(generate, "BUNDLED", bundled)
    assert generate.resolve_model("my-model") == bundled / "my-model"
    assert generate.resolve_model(tmp_path) == tmp_path  # a folder wins
    result = k2m("gen", "a man jumps", "--model", "no-such-model")
    assert result.code == 2 and "bundled: my-model" in result.err


def test_sampling_options_reach_the_sampler_checked():
    """--cfg sets the base pass only, --residual-cfg the residual one, --temperature/--topk both;
    the models' stored settings are left as they are, and a bad value names its option."""
    from k2m_core.errors import UserError
    from k2m_core.generate import load_model, resolve_model
    from k2m_core.t2m.config import SamplingOverrides

    stored = load_model(resolve_model("k2m-mini"))
    assert stored.masked_settings == stored.transformer.config.sampling
    assert stored.residual_settings == stored.residual.config.sampling
    chosen = load_model(resolve_model("k2m-mini"), sampling=SamplingOverrides(cfg=7.0, temperature=0.5, steps=4))
    assert (chosen.masked_settings.cfg_scale, chosen.masked_settings.steps, chosen.masked_settings.temperature) == \
        (7.0, 4, 0.5)
    assert chosen.residual_settings.cfg_scale == stored.residual_settings.cfg_scale
    assert chosen.residual_settings.temperature == 0.5
    assert chosen.transformer.config.sampling == stored.transformer.config.sampling
    residual = SamplingOverrides(residual_cfg=1.5).apply(stored.masked_settings, stored.residual_settings)
    assert residual == (stored.masked_settings, replace(stored.residual_settings, cfg_scale=1.5))
    for bad, option in ((dict(steps=0), "--steps"), (dict(cfg=float("nan")), "--cfg"), (dict(top_k=2.0), "--topk"),
                        (dict(temperature=-1.0), "--temperature"), (dict(residual_cfg=float("inf")), "--residual-cfg")):
        with pytest.raises(UserError, match=option):
            SamplingOverrides(**bad).validate()


def test_gen_help_names_the_models_own_defaults(k2m):
    """The help promises no number a model may not have (k2m-mini guides with 3, not MoMask's 4)."""
    result = k2m("gen", "--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    assert text.count("default: the model's own") >= 5 and "the model's, 4" not in text
