"""`k2m train vq`, `k2m eval recon` and `k2m plot` as a user runs them."""

import json
import shutil

import numpy as np

from k2m_core.train.rundir import read_metrics


def test_train_resume_eval_plot(k2m, synth_corpus, tmp_path):
    data, run = synth_corpus / "dataset.h5", tmp_path / "vq"
    result = k2m("--quiet", "train", "vq", "--data", data, "--out", run, "--preset", "tiny", "--steps", "6",
                 "--set", "train.save_every=3", "--set", "train.eval_every=3", "--set", "train.log_every=1")
    assert result.code == 0, result.err
    assert {p.name for p in run.iterdir()} >= {"config.toml", "metrics.jsonl", "checkpoints", "env.json"}
    assert (run / "checkpoints" / "latest").read_text() == "step_00000006"
    assert 'adapter = "dstformer"' in (run / "config.toml").read_text()
    metrics = read_metrics(run)
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert len(losses) == 6 and np.isfinite(losses).all()
    evals = [m for m in metrics if "eval/px_error_1080p" in m]
    assert [m["step"] for m in evals] == [3, 6] and "eval/pa_mpjpe_mm" in evals[-1]

    # A finished run is never overwritten by accident.
    again = k2m("train", "vq", "--data", data, "--out", run, "--preset", "tiny")
    assert again.code == 2 and "--resume" in again.err and (run / "checkpoints" / "latest").exists()

    result = k2m("--quiet", "eval", "recon", run, "--split", "test", "--out", tmp_path / "recon.json")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "recon.json").read_text())
    assert report == json.loads(result.out)
    assert report["px_error_1080p"] > 0 and 0 < report["usage/layer0"] <= 1
    assert 1 <= report["perplexity/layer0"] <= 32 and report["mpjpe_mm"] > 0

    result = k2m("plot", run)
    assert result.code == 0 and (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_from_cli_matches_uninterrupted(k2m, synth_corpus, tmp_path):
    data = synth_corpus / "dataset.h5"
    common = ["--preset", "tiny", "--steps", "4", "--set", "train.save_every=2", "--set", "train.log_every=1",
              "--set", "train.eval_every=100"]
    assert k2m("-q", "train", "vq", "--data", data, "--out", tmp_path / "a", *common).code == 0
    assert k2m("-q", "train", "vq", "--data", data, "--out", tmp_path / "b", *common).code == 0
    # Pretend run b died after its step-2 checkpoint, then resume it.
    ckpts = tmp_path / "b" / "checkpoints"
    shutil.rmtree(ckpts / "step_00000004")
    (ckpts / "latest").write_text("step_00000002")
    assert k2m("-q", "train", "vq", "--resume", tmp_path / "b").code == 0
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    losses_a = [m["loss"] for m in a if "loss" in m]
    assert len(losses_a) == 4 and losses_a == [m["loss"] for m in b if "loss" in m]


def test_bad_options_are_user_errors(k2m, synth_corpus, tmp_path):
    data = synth_corpus / "dataset.h5"
    result = k2m("train", "vq", "--data", data, "--out", tmp_path / "r", "--preset", "huge")
    assert result.code == 2 and "--preset 'huge'" in result.err
    result = k2m("train", "vq", "--data", tmp_path / "missing.h5", "--out", tmp_path / "r")
    assert result.code == 2 and "no such dataset" in result.err
    result = k2m("train", "vq", "--data", data, "--out", tmp_path / "r", "--adapter", "lstm", "--preset", "tiny")
    assert result.code == 2 and "adapter" in result.err
    result = k2m("train", "vq", "--resume", tmp_path / "nothing")
    assert result.code == 2
    assert not (tmp_path / "r").exists() or not (tmp_path / "r" / "checkpoints" / "latest").exists()
