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
