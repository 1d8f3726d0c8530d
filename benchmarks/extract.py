"""Benchmark of `k2m extract` with the default backend (mediapipe BlazePose full): frames per second
on a 720p video on 2 cores, against decoding the same video alone in the same run, and the
backend's accuracy on the real COCO photos of the fixtures.

    python benchmarks/extract.py [--frames 150]

The video is real: the 5 frames of ``posetrack18_000001_5frames.mp4`` (1280×720, people in view)
played back and forth to ``--frames`` frames and encoded with H.264. Rows: ffmpeg decoding to RGB
only (the floor any backend pays); extraction in one process; extraction with ``--workers 2`` over
two copies of the video (the throughput of the machine). All on at most 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT / ".." / "shared" / "fixtures" / "real"


def make_video(path: Path, frames: int) -> None:
    import imageio_ffmpeg

    from k2m_core.extract.run import decode

    _, source = decode(REAL / "posetrack18_000001_5frames.mp4")
    clip = list(source)
    order = (list(range(len(clip))) + list(range(len(clip) - 2, 0, -1))) * (frames // (2 * len(clip) - 2) + 1)
    writer = imageio_ffmpeg.write_frames(str(path), (1280, 720), fps=30, codec="libx264", quality=7)
    writer.send(None)
    for i in order[:frames]:
        writer.send(np.ascontiguousarray(clip[i]))
    writer.close()


def cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def timed(fn) -> tuple[float, float, object]:
    cpu, start = cpu_seconds(), time.perf_counter()
    value = fn()
    return time.perf_counter() - start, cpu_seconds() - cpu, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 2:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    from k2m_core.extract.estimators import EstimatorSpec
    from k2m_core.extract.run import ExtractConfig, decode, run_extract
    from k2m_core.extract.score import score_coco

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "a" / "posetrack720.mp4"
        video.parent.mkdir()
        make_video(video, args.frames)
        (tmp / "b").mkdir()
        shutil.copy(video, tmp / "b" / "posetrack720_copy.mp4")

        def decode_only() -> int:
            _, frames = decode(video)
            return sum(1 for _ in frames)

        rows = []
        wall, cpu, count = timed(decode_only)
        rows.append(("ffmpeg decode to RGB only", count, wall, cpu))
        wall, cpu, results = timed(lambda: run_extract([video], tmp / "one", ExtractConfig(force=True)))
        rows.append(("extract, mediapipe, 1 process", results[0].frames, wall, cpu))
        seen = results[0].with_person
        wall, cpu, results = timed(lambda: run_extract([video, tmp / "b"], tmp / "two",
                                                       ExtractConfig(workers=2, force=True)))
        rows.append(("extract, mediapipe, --workers 2 (2 videos)", sum(r.frames for r in results), wall, cpu))

        estimator = EstimatorSpec().open(video=False)
        score = score_coco(REAL / "coco_person_keypoints_sample.json", REAL / "coco_images", estimator)
        estimator.close()

    base = rows[0][1] / rows[0][2]
    print(f"720p video, {args.frames} frames, {len(os.sched_getaffinity(0))} cores; "
          f"a person found in {seen}/{args.frames} frames")
    # frames per CPU second: what the run costs, whatever else shares the cores
    print(f"{'run':46} {'frames':>7} {'wall s':>7} {'cpu s':>7} {'frames/s':>9} {'vs decode':>9} {'frames/cpu-s':>12}")
    for name, frames, wall, cpu in rows:
        rate = frames / wall
        print(f"{name:46} {frames:7d} {wall:7.2f} {cpu:7.2f} {rate:9.1f} {rate / base:8.2f}x {frames / cpu:12.1f}")
    print(f"\naccuracy on the {len(score.images)} real COCO photos (largest person, matched by box overlap):")
    print(f"PCK@0.1·box height {score.pck:.3f}   mean OKS {score.mean_oks:.3f}   OKS AP {score.ap:.3f}")


if __name__ == "__main__":
    main()
