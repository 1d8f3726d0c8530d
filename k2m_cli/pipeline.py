"""Run `k2m` commands as child processes, one after another or side by side: the engine of
`k2m demo` and of the recipes in examples/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from k2m_core.errors import UserError


@dataclass
class Step:
    name: str
    args: list[str]
    threads: int | None = None  # torch threads (OMP_NUM_THREADS) for steps that share the CPU
    seconds: float = 0.0
    log: Path | None = None

    @property
    def command(self) -> str:
        return "k2m " + " ".join(self.args)


def _start(step: Step, log_dir: Path | None) -> subprocess.Popen:
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(step.threads)} if step.threads else {}))
    if log_dir is None:
        return subprocess.Popen([sys.executable, "-m", "k2m_cli.main", "-q", *step.args], env=env)
    log_dir.mkdir(parents=True, exist_ok=True)
    step.log = log_dir / f"{step.name.replace(' ', '_')}.log"
    with open(step.log, "w") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "k2m_cli.main", "-q", *step.args], env=env,
                                stdout=output, stderr=subprocess.STDOUT)


def run_steps(steps: list[Step], *, log_dir: Path | None = None, echo=print) -> None:
    """Run ``steps`` side by side and wait for all; each one's time goes into ``step.seconds``.
    A failing step stops everything with a `UserError` naming its command and log."""
    start = time.perf_counter()
    for step in steps:
        echo(f"$ {step.command}")
    running = [(step, _start(step, log_dir)) for step in steps]
    failed = []
    for step, process in running:
        code = process.wait()
        step.seconds = time.perf_counter() - start
        if code != 0:
            failed.append(step)
    if failed:
        step = failed[0]
        where = f"; its output is in {step.log}" if step.log else ""
        raise UserError(f"step '{step.name}' failed (`{step.command}`){where}")
