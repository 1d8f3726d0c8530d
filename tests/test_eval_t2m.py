"""`k2m eval train-evaluator | t2m | critic | physics` end to end on synthetic data."""

import json

import numpy as np
import pytest

from k2m_core.eval import metrics

# A small evaluator that learns on a few hundred synthetic clips in seconds on one CPU thread.
SMALL = ["--set", "model.word_dim=64", "--set", "model.text_hidden=64", "--set", "model.movement_hidden=64",
         "--set", "model.movement_latent=64", "--set", "model.motion_hidden=64", "--set", "model.embed_dim=64",
         "--set", "train.lr=2e-3", "--set", "max_frames=160", "--set", "train.eval_every=50"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from k2m_core.synth.corpus import SynthConfig, write_corpus

    out = tmp_path_factory.mktemp("eval_corpus")
    write_corpus(out, 320, SynthConfig(seed=1))
    return out / "dataset.h5"


@pytest.fixture(scope="module")
def evaluator_run(corpus, tmp_path_factory):
    from k2m_cli.main import run

    out = tmp_path_factory.mktemp("evaluator") / "run"
    with pytest.raises(SystemExit) as info:
        run(["-q", "eval", "train-evaluator", str(corpus), "--out", str(out), "--preset", "tiny", "--steps", "250",
             "--batch-size", "64", "--patience", "0", *SMALL])
    assert info.value.code == 0
    return out


def test_evaluator_learns_on_synthetic_data(evaluator_run, corpus):
    from k2m_core.data.dataset import Dataset
    from k2m_core.eval.evaluator import load_evaluator

    for name in ("config.toml", "metrics.jsonl", "env.json", "finished.json", "checkpoints/best/model.safetensors"):
        assert (evaluator_run / name).exists(), name
    evaluator = load_evaluator(evaluator_run)
    dataset = Dataset(corpus)
    val = dataset.splits["val"]
    assert len(val) >= 32
    motion = evaluator.embed_clips([dataset.keypoints(int(c)) for c in val])
    text = evaluator.embed_captions([dataset.captions(int(c))[0] for c in val])
    rng = np.random.default_rng(0)
    top = np.mean([metrics.r_precision(text, motion, rng) for _ in range(10)], axis=0)
    assert top[0] > 0.15, top  # chance is 1/32 ≈ 0.031
    assert top[2] > top[0]
    logged = [json.loads(line) for line in (evaluator_run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["eval/val_loss"] for r in logged if "eval/val_loss" in r]
    assert min(losses[1:]) < losses[0]


def test_evaluator_stops_early_when_validation_stalls(corpus, tmp_path, k2m):
    # With lr 0 the validation loss never improves after the first evaluation.
    result = k2m("-q", "eval", "train-evaluator", corpus, "--out", tmp_path / "r", "--preset", "tiny", "--steps", "100",
                 "--patience", "1", "--set", "train.lr=0", "--set", "train.eval_every=5")
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "r" / "finished.json").read_text()) == {"steps": 10, "stopped_early": True}
    best = json.loads((tmp_path / "r" / "checkpoints" / "best" / "best.json").read_text())
    assert best["evaluations_without_improvement"] == 1 and best["last_step"] == 10


def test_t2m_report_ground_truth_vs_model(k2m, model_dir, evaluator_run, corpus, tmp_path):
    args = ["eval", "t2m", model_dir, "--evaluator", evaluator_run, "--data", corpus, "--out", tmp_path / "rep",
            "--repetitions", "2", "--mm-texts", "4", "--mm-generations", "3", "--device", "cpu"]
    result = k2m("-q", *args)
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    truth, model = report["rows"]["ground truth"], report["rows"]["model"]
    assert set(model) == {"fid", "top1", "top2", "top3", "mm_dist", "diversity", "multimodality"}
    assert "multimodality" not in truth and len(model["fid"]["values"]) == 2
    assert report["pool_size"] == 32 and report["clips"] == 32
    # The model here is barely trained: far from the data, while ground truth matches itself.
    assert truth["fid"]["mean"] < model["fid"]["mean"]
    assert truth["top1"]["mean"] > 0.1
    assert truth["fid"]["ci95"] >= 0 and 0 <= model["top3"]["mean"] <= 1
    table = (tmp_path / "rep" / "report.md").read_text()
    assert "| Method | FID ↓ | Top-1 ↑" in table and "| ground truth |" in table
    for name in ("metrics.png", "embeddings.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 1000

    again = k2m("-q", *args)
    assert again.code == 2 and "--force" in again.err
    assert k2m("-q", *args, "--force").code == 0
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["rows"] == report["rows"]  # seeded


def test_physics_and_critic_on_generated_and_ground_truth(k2m, model_dir, corpus, tmp_path):
    from test_eval_metrics import save_released_layout

    gen = k2m("-q", "gen", "a man jumps", "someone walks forward", "--frames", "90", "--model", model_dir,
              "--out", tmp_path / "gen", "--format", "npz")
    assert gen.code == 0, gen.err
    physics = k2m("-q", "eval", "physics", tmp_path / "gen", "--out", tmp_path / "physics.json")
    assert physics.code == 0, physics.err
    summary = json.loads(physics.out)
    assert summary["motions"] == 2 and 0 <= summary["skating_ratio"] <= 1 and summary["jitter"] >= 0
    saved = json.loads((tmp_path / "physics.json").read_text())
    assert [m["name"].endswith(".npz") for m in saved["motions"]] == [True, True]
    truth = k2m("-q", "eval", "physics", "--data", corpus, "--split", "test")
    assert truth.code == 0, truth.err
    assert json.loads(truth.out)["motions"] == 32

    save_released_layout(tmp_path / "critic.pth")
    first = k2m("-q", "eval", "critic", tmp_path / "gen", "--checkpoint", tmp_path / "critic.pth", "--device", "cpu",
                "--out", tmp_path / "critic.json")
    assert first.code == 0, first.err
    second = k2m("-q", "eval", "critic", tmp_path / "gen" / "a_man_jumps_00.npz", tmp_path / "gen" / "someone_walks_forward_00.npz",
                 "--checkpoint", tmp_path / "critic.pth", "--device", "cpu")
    assert json.loads(first.out) == json.loads(second.out)
    assert set(json.loads(first.out)) == {"mean", "max", "min", "std", "motions"}


@pytest.mark.parametrize("args,message", [
    (["critic", "MOTIONS", "--checkpoint", "missing.pth"], "motioncritic_pre.pth"),
    (["physics", "EMPTY"], "no motion files in this folder"),
    (["physics", "nothing_here.npz"], "no such file"),
    (["t2m", "MODEL", "--evaluator", "EMPTY"], "not an evaluator run"),
])
def test_eval_user_errors(k2m, model_dir, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    names = {"MOTIONS": tmp_path / "empty", "EMPTY": tmp_path / "empty", "MODEL": model_dir}
    result = k2m("eval", *[str(names.get(a, tmp_path / a if a.endswith((".pth", ".npz")) else a)) for a in args])
    assert result.code == 2 and message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1


def test_evaluator_training_skips_clips_without_captions(tmp_path):
    from dataclasses import replace

    from k2m_core.data.dataset import DatasetWriter
    from k2m_core.keypoints import make_clip
    from k2m_core.train.evaluator import default_config, train_evaluator

    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "d.h5", split_seed=0) as writer:
        for i in range(40):
            captions = [] if i % 4 == 0 else [f"a person does thing {i % 5}"]
            writer.add_clip(f"c{i}", make_clip(rng.uniform(100, 900, (64, 17, 2)), np.ones((64, 17)), 1000, 1000),
                            captions)
    config = default_config("tiny", tmp_path / "d.h5")
    config.train = replace(config.train, steps=4, eval_every=4, save_every=4, device="cpu")
    last = train_evaluator(config, tmp_path / "run")
    assert last["clips_without_captions"] == 10 and np.isfinite(last["eval/val_loss"])


def test_body_frame_models_are_shown_in_views_drawn_as_the_corpus_draws_them(body_model_dir):
    from k2m_core.eval.t2m import generate_clips
    from k2m_core.loading import load_sampler

    sampler = load_sampler(body_model_dir / "transformer")
    clips = generate_clips(sampler, ["a man walks"] * 24, np.full(24, 32), seed=5, batch_size=8)
    hips_x = np.array([clip[0, 11, 0] - clip[0, 12, 0] for clip in clips])  # COCO left − right hip, pixels
    # Facing the camera the left hip is on the image's right; from behind, on its left.
    assert (hips_x > 5).sum() >= 3 and (hips_x < -5).sum() >= 1
    again = generate_clips(sampler, ["a man walks"] * 24, np.full(24, 32), seed=5, batch_size=8)
    np.testing.assert_array_equal(np.stack(clips), np.stack(again))


def test_generated_motion_is_projected_with_the_camera_the_tokenizer_decoded_for(model_dir):
    from k2m_core.camera import project
    from k2m_core.eval.t2m import generate_clips
    from k2m_core.loading import load_sampler

    sampler = load_sampler(model_dir / "transformer")
    assert sampler.tokenizer.generation_focal == 1920.0  # learned with each clip's own focal length
    clips = generate_clips(sampler, ["a man walks"], np.array([32]), seed=1, batch_size=4)
    motion = sampler.generate(["a man walks"], [32], seed=1).motion
    keypoints = sampler.tokenizer.body(motion.rotmats[0], motion.betas.expand(32, -1), motion.transl[0]).keypoints
    pixels, _ = project(keypoints, 1920.0, 1080.0, 1920.0)
    seen = clips[0][:, :17, 2] > 0
    assert seen.any()
    np.testing.assert_allclose(clips[0][:, :17, :2][seen], pixels.detach().numpy()[seen], atol=1e-2)
