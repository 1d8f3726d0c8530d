"""Which focal length to assume for a camera nobody described: score a tokenizer on clips whose true
focal lengths are known (a realistic-camera synthetic corpus) while telling it a guess instead.

    python benchmarks/default_focal.py --tokenizer runs/vq --data corpus/dataset.h5 --split test

Each row replaces every clip's focal length by ``factor × max(W, H)``; the first row, the truth,
is the baseline the guesses are compared with in the same run. The factor whose row comes closest
is the one to use as `k2m_core.keypoints.DEFAULT_FOCAL_PER_EXTENT`.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from k2m_core.data.dataset import Dataset
from k2m_core.eval.recon import reconstruction_metrics
from k2m_core.keypoints import FRAME_SIZE_ROW
from k2m_core.loading import load_tokenizer

COLUMNS = ("pa_mpjpe_mm", "mpjpe_mm", "px_error_1080p", "facing_deg", "depth_travel_ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--factors", default="0.6,0.8,1.0,1.2,1.5,2.0")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_tokenizer(args.tokenizer)
    dataset = Dataset(args.data)
    clips = dataset.splits[args.split]
    extent = np.array([dataset.keypoints(int(c), 0, 1)[0, FRAME_SIZE_ROW, :2].max() for c in clips])
    truth = dataset.focals.copy()
    rows = [("true focal", reconstruction_metrics(model, dataset, args.split, torch.device("cpu")))]
    print(f"true focal / long side: median {np.median(truth[clips] / extent):.2f}, "
          f"range {np.min(truth[clips] / extent):.2f}–{np.max(truth[clips] / extent):.2f} over {len(clips)} clips")
    for factor in (float(f) for f in args.factors.split(",")):
        dataset.focals = truth.copy()
        dataset.focals[clips] = factor * extent
        rows.append((f"{factor:.2f} × long side", reconstruction_metrics(model, dataset, args.split,
                                                                      torch.device("cpu"))))
    print("| focal told | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, metrics in rows:
        print(f"| {name} | " + " | ".join(f"{metrics.get(c, float('nan')):.3g}" for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
