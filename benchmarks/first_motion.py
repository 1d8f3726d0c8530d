"""Time to first motion: `k2m gen "a man jumps" --frames 150 --out DIR` from a cold process.

    python benchmarks/first_motion.py [--runs 5] [--model k2m-mini] [--python OTHER_VENV/bin/python …]

Each run is a fresh `k2m` process (imports, bundled-model load, text encoding, sampling, decoding,
writing .npz and .bvh), timed by wall clock. The baseline row is the floor every torch program
pays on this machine: a process that only imports torch. Every interpreter given (default: this
one) is measured, interleaved, and named by the torch build it runs — e.g. the pinned CPU wheel CI
uses next to the CUDA wheel a plain `pip install` brings (`python -m venv v && v/bin/pip install -e .`
gives the latter). Target: median ≤ 5 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = "import torch; print(torch.__version__, 'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU-only')"


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def torch_build(python: str) -> str:
    """``2.13.0+cpu CPU-only`` / ``2.14.1+cu130 CUDA 13.0``: the torch that ``python`` imports."""
    return subprocess.run([python, "-c", PROBE], check=True, capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="k2m-mini")
    parser.add_argument("--python", action="append", default=[],
                        help="Another interpreter (a venv's bin/python with k2m installed) to measure too.")
    args = parser.parse_args()
    pythons = [sys.executable] + [p for p in args.python if p != sys.executable]
    builds = {python: torch_build(python) for python in pythons}
    out = Path(tempfile.mkdtemp(prefix="k2m-first-motion-"))
    rows: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(args.runs):  # interleaved, so load changes hit every row alike
            for python in pythons:
                k2m = [python, "-m", "k2m_cli.main"]
                rows.setdefault((python, "python -c 'import torch' (baseline)"), []).append(
                    wall([python, "-c", "import torch"]))
                rows.setdefault((python, "k2m --help"), []).append(wall([*k2m, "--help"]))
                shutil.rmtree(out / "gen", ignore_errors=True)
                rows.setdefault((python, "k2m gen (npz+bvh)"), []).append(
                    wall([*k2m, "-q", "gen", "a man jumps", "--frames", "150", "--model", args.model,
                          "--out", str(out / "gen")]))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"{os.cpu_count()} CPUs, torch threads {threads}, {args.runs} runs each, model {args.model}\n")
    print(f"| {'torch':26} | {'command':38} | median s |  min s |  max s |")
    print(f"| {'-' * 26} | {'-' * 38} | -------: | -----: | -----: |")
    for (python, name), times in rows.items():
        print(f"| {builds[python]:26} | {name:38} | {statistics.median(times):8.2f} | {min(times):6.2f} | "
              f"{max(times):6.2f} |")
    print()
    for python in pythons:
        median = statistics.median(rows[(python, "k2m gen (npz+bvh)")])
        floor = statistics.median(rows[(python, "python -c 'import torch' (baseline)")])
        print(f"first motion with torch {builds[python]}: median {median:.2f} s ({median - floor:.2f} s above "
              f"importing torch); target ≤ 5 s: {'met' if median <= 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
