"""Shared fixtures: a small synthetic corpus and an in-process `k2m` runner."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from k2m_cli.main import run


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Test models are tiny: torch's intra-op threads only add overhead (a lot on a shared 2-core box)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def k2m(capsys):
    """Run `k2m ARGS…` in this process; returns exit code, stdout and stderr."""

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            run([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory):
    """24 synthetic clips (seed 0) with ground truth: the folder `k2m data synth` writes."""
    from k2m_core.synth.corpus import SynthConfig, write_corpus

    out = tmp_path_factory.mktemp("corpus")
    write_corpus(out, 24, SynthConfig(seed=0))
    return out


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, synth_corpus):
    """A k2m model folder (vq/, transformer/, residual/, length/) of tiny models trained a few steps
    on `synth_corpus` with the words encoder: untrained in quality, real in every format."""
    import shutil

    root = tmp_path_factory.mktemp("model")
    data = shutil.copy(synth_corpus / "dataset.h5", root / "data.h5")  # caches are written into it

    def k2m(*args):
        with pytest.raises(SystemExit) as info:
            run(["-q", *map(str, args)])
            raise SystemExit(0)
        assert info.value.code == 0, args

    tiny = ["--preset", "tiny", "--steps", "4", "--set", "train.eval_every=1000"]
    k2m("train", "vq", "--data", data, "--out", root / "vq", *tiny)
    k2m("data", "tokenize", data, "--tokenizer", root / "vq")
    for kind in ("transformer", "residual", "length"):
        k2m("train", kind, "--data", data, "--tokenizer", root / "vq", "--out", root / kind, "--encoder", "words", *tiny)
    return root


@pytest.fixture(scope="session")
def body_model_dir(tmp_path_factory, synth_corpus):
    """`model_dir`'s tokenizer and masked transformer, with body-frame tokens (``tokens = "body"``)."""
    import shutil

    root = tmp_path_factory.mktemp("body_model")
    data = shutil.copy(synth_corpus / "dataset.h5", root / "data.h5")

    def k2m(*args):
        with pytest.raises(SystemExit) as info:
            run(["-q", *map(str, args)])
            raise SystemExit(0)
        assert info.value.code == 0, args

    tiny = ["--preset", "tiny", "--steps", "4", "--set", "train.eval_every=1000"]
    k2m("train", "vq", "--data", data, "--out", root / "vq", *tiny, "--set", "model.tokens=body")
    k2m("data", "tokenize", data, "--tokenizer", root / "vq")
    k2m("train", "transformer", "--data", data, "--tokenizer", root / "vq", "--out", root / "transformer",
        "--encoder", "words", *tiny)
    return root
