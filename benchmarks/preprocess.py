"""Benchmark of `k2m preprocess`: input frames per second from .npz files and from OpenPose JSON
folders with 1 and 2 workers, peak memory as the input grows, and the time extrapolated to
MotionWeb's scale (17.3 M frames in 101k clips).

    python benchmarks/preprocess.py [--npz-frames 400000] [--openpose-frames 30000]

Inputs are procedural walkers (one person, 30 fps, 1280×720) written with k2m's own writers into a
temporary folder. Each measurement runs in a fresh process so that peak memory (max RSS of the
main process and of its workers) belongs to that run alone. Target: ≥ 200k frames/s from .npz
on 2 cores, and peak memory flat as the input grows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MOTIONWEB_FRAMES, MOTIONWEB_CLIPS = 17_300_000, 101_000
FRAMES_PER_VIDEO = 4000  # ~2.2 min per input video


def make_inputs(folder: Path, total_frames: int, fmt: str) -> Path:
    from k2m_core.preprocess.formats import write_openpose_folder, write_pose_npz
    from k2m_core.preprocess.procedural import walking_figure

    folder.mkdir(parents=True, exist_ok=True)
    videos = max(1, total_frames // FRAMES_PER_VIDEO)
    per_video = total_frames // videos
    xy, conf = walking_figure(per_video, seed=0)
    captions = []
    for v in range(videos):
        shifted = xy + np.float32(v % 7)  # distinct but equally valid inputs
        if fmt == "npz":
            write_pose_npz(folder / f"v{v:05d}.npz", shifted, conf, fps=30, width=1280, height=720)
        else:
            write_openpose_folder(folder / f"v{v:05d}", shifted, conf, video_id=f"v{v:05d}")
        captions.append(json.dumps({"video": f"v{v:05d}", "captions": ["a person walks back and forth"]}))
    (folder.parent / f"{folder.name}.captions.jsonl").write_text("\n".join(captions) + "\n")
    return folder


def run_child(inputs: Path, workers: int, out: Path) -> dict:
    """Runs in a fresh process: preprocess ``inputs`` and report rate and peak memory."""
    from k2m_core.preprocess.config import InputOptions, PreprocessConfig
    from k2m_core.preprocess.pipeline import run_preprocess

    cfg = PreprocessConfig(workers=workers, inputs=InputOptions(size=(1280, 720), fps=30.0))
    me = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = me.ru_utime + me.ru_stime
    start = time.perf_counter()
    report, _ = run_preprocess([inputs], out, inputs.parent / f"{inputs.name}.captions.jsonl", cfg, force=True)
    seconds = time.perf_counter() - start
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime - cpu_before
    return {"frames": report.source_frames, "clips": report.clips, "seconds": seconds, "cpu": cpu,
            "rate": report.source_frames / seconds, "cpu_rate": report.source_frames / cpu,
            "peak_main_mb": me.ru_maxrss / 1024, "peak_worker_mb": kids.ru_maxrss / 1024}


def measure(inputs: Path, workers: int, out: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", str(inputs), str(workers), str(out)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz-frames", type=int, default=400_000)
    parser.add_argument("--openpose-frames", type=int, default=40_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(Path(args.child[0]), int(args.child[1]), Path(args.child[2]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        sets = {"npz": make_inputs(root / "npz", args.npz_frames, "npz"),
                "openpose": make_inputs(root / "openpose", args.openpose_frames, "openpose")}
        print(f"inputs written in {time.perf_counter() - t:.1f} s ({os.cpu_count()} CPUs visible)\n")
        rows = []
        for fmt, inputs in sets.items():
            for workers in (1, 2):
                r = measure(inputs, workers, root / f"{fmt}{workers}.h5")
                rows.append((fmt, workers, r))
        print(f"{'input':<10}{'workers':>8}{'frames':>10}{'clips':>7}{'wall s':>8}{'frames/s':>10}{'CPU s':>7}"
              f"{'frames/CPU-s':>13}{'peak main MB':>13}{'peak worker MB':>15}{'MotionWeb h':>12}")
        for fmt, workers, r in rows:
            print(f"{fmt:<10}{workers:>8}{r['frames']:>10,}{r['clips']:>7,}{r['seconds']:>8.2f}{r['rate']:>10,.0f}"
                  f"{r['cpu']:>7.2f}{r['cpu_rate']:>13,.0f}{r['peak_main_mb']:>13.0f}{r['peak_worker_mb']:>15.0f}"
                  f"{MOTIONWEB_FRAMES / r['rate'] / 3600:>12.2f}")
        print(f"\nframes/s: wall clock on this machine (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
              "at the end). frames/CPU-s: input frames per CPU-second of the main process and its workers "
              "together, which load does not change much; on N free cores the wall rate is at most "
              "N × frames/CPU-s.")
        print(f"MotionWeb h = time for {MOTIONWEB_FRAMES / 1e6:.1f} M input frames at the measured wall rate "
              f"(the dataset's {MOTIONWEB_CLIPS:,} clips hold that many frames; raw videos hold more).")
        print("\npeak memory as the .npz input grows (1 worker):")
        print(f"{'frames':>10}{'files':>7}{'peak main MB':>14}{'frames/s':>11}")
        for scale in (1, 2, 4):
            inputs = make_inputs(root / f"grow{scale}", args.npz_frames * scale // 4, "npz")
            r = measure(inputs, 1, root / f"grow{scale}.h5")
            print(f"{r['frames']:>10,}{r['frames'] // FRAMES_PER_VIDEO:>7}{r['peak_main_mb']:>14.0f}{r['rate']:>11,.0f}")


if __name__ == "__main__":
    main()
