"""Time to first motion: `k2m gen "a man jumps" --frames 150 --out DIR` from a cold process.

    python benchmarks/first_motion.py [--runs 5] [--model k2m-mini]

Each run is a fresh `k2m` process (imports, bundled-model load, text encoding, sampling, decoding,
writing .npz and .bvh), timed by wall clock. The baseline row is the floor every torch program
pays on this machine: a process that only imports torch. Target: median ≤ 5 s on a 2-core CPU.
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

K2M = [sys.executable, "-m", "k2m_cli.main"]


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="k2m-mini")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="k2m-first-motion-"))
    try:
        rows = {"python -c 'import torch' (baseline)": [], "k2m --help": [], "k2m gen (npz+bvh)": []}
        for _ in range(args.runs):  # interleaved, so load changes hit every row alike
            rows["python -c 'import torch' (baseline)"].append(wall([sys.executable, "-c", "import torch"]))
            rows["k2m --help"].append(wall([*K2M, "--help"]))
            shutil.rmtree(out / "gen", ignore_errors=True)
            rows["k2m gen (npz+bvh)"].append(wall([*K2M, "-q", "gen", "a man jumps", "--frames", "150", "--model",
                                                   args.model, "--out", str(out / "gen")]))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"{os.cpu_count()} CPUs, torch threads default, {args.runs} runs each, model {args.model}\n")
    print(f"| {'command':38} | median s |  min s |  max s |")
    print(f"| {'-' * 38} | -------: | -----: | -----: |")
    for name, times in rows.items():
        print(f"| {name:38} | {statistics.median(times):8.2f} | {min(times):6.2f} | {max(times):6.2f} |")
    median = statistics.median(rows["k2m gen (npz+bvh)"])
    floor = statistics.median(rows["python -c 'import torch' (baseline)"])
    print(f"\nfirst motion: median {median:.2f} s ({median - floor:.2f} s above importing torch); "
          f"target ≤ 5 s: {'met' if median <= 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
