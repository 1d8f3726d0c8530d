"""Tokenizer training speed: steps/s and samples/s at batch 64, `--adapter dstformer` vs `none`,
CPU (and CUDA when available), with peak memory — one table from one run.

    python benchmarks/train_vq.py [--preset cpu] [--steps 10] [--window 64]

Batches come from a small synthetic corpus built on the fly, exactly as `k2m train vq` reads them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from k2m_core.data.dataset import Dataset
from k2m_core.synth.corpus import SynthConfig, write_corpus
from k2m_core.tokenizer.config import preset
from k2m_core.loading import build_tokenizer
from k2m_core.train.windows import WindowSampler


def bench(adapter: str, device_name: str, data_path: str, args) -> dict:
    """One row, run in its own process so the peak RSS is this configuration's alone."""
    device, dataset = torch.device(device_name), Dataset(data_path)
    torch.manual_seed(0)
    model = build_tokenizer(preset(args.preset, adapter=adapter, window=args.window)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    batches = WindowSampler(dataset, "train", args.window, args.batch, seed=0, mirror=0.5)
    use_bf16 = device.type == "cuda"
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step(i: int) -> None:
        batch = batches[i].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(**batch.model_inputs()).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(args.warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    tic = time.perf_counter()
    for i in range(args.steps):
        step(args.warmup + i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - tic
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return {"device": device.type, "adapter": adapter, "params_M": params, "steps_per_s": args.steps / seconds,
            "samples_per_s": args.steps * args.batch / seconds, "peak_MiB": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(Path(tmp), 64, SynthConfig(seed=0))
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        rows = []
        for device in devices:
            for adapter in ("dstformer", "none"):
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    rows.append(pool.submit(bench, adapter, device, str(Path(tmp) / "dataset.h5"), args).result())
    print(f"\ntokenizer training, preset {args.preset}, batch {args.batch} x {args.window} frames, "
          f"{args.steps} timed steps, torch threads {torch.get_num_threads()}")
    print(f"{'device':<7}{'adapter':<11}{'params M':>9}{'steps/s':>10}{'samples/s':>11}{'peak MiB':>10}{'vs none':>9}")
    for row in rows:
        base = next(r for r in rows if r["device"] == row["device"] and r["adapter"] == "none")
        print(f"{row['device']:<7}{row['adapter']:<11}{row['params_M']:>9.2f}{row['steps_per_s']:>10.2f}"
              f"{row['samples_per_s']:>11.1f}{row['peak_MiB']:>10.0f}{row['steps_per_s'] / base['steps_per_s']:>8.2f}x")
    print("peak memory: CUDA max allocated on GPU rows; the measuring process's max RSS on CPU rows")


if __name__ == "__main__":
    main()
