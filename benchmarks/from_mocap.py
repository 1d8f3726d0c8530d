"""Benchmark of `k2m data from-mocap`: source frames read and dataset frames written per second, by
input kind (CMU BVH, AIST++ pickle, AMASS npz), with 1 and 4 views, against `k2m data synth`
making the same number of dataset frames in the same run (the other way k2m makes 2D data with
3D truth).

    OMP_NUM_THREADS=1 python benchmarks/from_mocap.py [--repeat 8]

Inputs are the real fixtures (``../shared/fixtures/real``), each copied ``--repeat`` times under
distinct names, and the AIST++ dance converted to an AMASS-style file with `k2m export`'s writer.
One process: the command has no workers, so this is its rate per core; a machine with 2 cores
runs two shards (split the inputs) at twice the rate.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

REAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"


def inputs(folder: Path, kind: str, repeat: int, body) -> tuple[Path, int]:
    """``repeat`` copies of one kind's fixtures in ``folder``; returns it and the source frames."""
    from k2m_core.export.motion_file import load_motion, save_motion

    folder.mkdir(parents=True)
    frames = 0
    for k in range(repeat):
        if kind == "bvh":
            for path in sorted(REAL.glob("cmu_131_0*.bvh")):
                shutil.copy(path, folder / f"{path.stem}_{k}.bvh")
                frames += int(path.read_text().split("Frames:")[1].split()[0])
        else:
            aist = REAL / "aistpp_gBR_sBM_cAll_d04_mBR0_ch01.pkl"
            if kind == "pkl":
                shutil.copy(aist, folder / f"aist_{k}.pkl")
            else:
                save_motion(load_motion(aist, body), folder / f"aist_{k}.npz", body)
            frames += 720
    return folder, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=8)
    args = parser.parse_args()
    from k2m_core.body.skeleton import SkeletonBody
    from k2m_core.mocap.corpus import MocapConfig, write_mocap_dataset
    from k2m_core.synth.corpus import SynthConfig, write_corpus

    body = SkeletonBody().to(torch.float64)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        written_at_4 = 0
        for kind in ("bvh", "pkl", "npz"):
            folder, source_frames = inputs(tmp / kind, kind, args.repeat, body)
            for views in (1, 4):
                start = time.perf_counter()
                report = write_mocap_dataset([folder], tmp / f"{kind}{views}.h5", MocapConfig(views=views), body)
                seconds = time.perf_counter() - start
                rows.append((f"from-mocap {kind}, {views} view(s)", source_frames / seconds,
                             report["frames"] / seconds, seconds))
                written_at_4 += report["frames"] if views == 4 else 0
        # Baseline: the synthetic corpus, as many clips as it takes to write about as many frames.
        clips = max(1, written_at_4 // 3 // 180)
        start = time.perf_counter()
        summary = write_corpus(tmp / "synth", clips, SynthConfig(seed=0))
        seconds = time.perf_counter() - start
        rows.append((f"baseline: data synth, {clips} clips", float("nan"), summary["frames"] / seconds, seconds))
    print(f"{'run':<34} {'source frames/s':>16} {'dataset frames/s':>17} {'seconds':>8}")
    for name, read, written, seconds in rows:
        print(f"{name:<34} {read:>16,.0f} {written:>17,.0f} {seconds:>8.2f}")


if __name__ == "__main__":
    main()
