"""The training loop every k2m trainer uses. Read it top to bottom:

1. seed, move the model to the device, wrap it in DDP when launched by torchrun;
2. AdamW with linear warm-up then step decay (MoMask's MultiStepLR);
3. resume weights, optimizer, scheduler and RNG if asked (batches are a function of the step);
4. per step: batch → forward under bf16 autocast on CUDA → skip the step if the loss or the
   gradient is not finite (stop after too many) → clip → step → log, evaluate, checkpoint.

A batch offers ``.to(device)``, ``len(batch)`` and ``.model_inputs()`` (the forward's keyword
arguments); the model's forward returns an object with a scalar ``loss`` and a dict ``terms`` of
scalar tensors to log.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch

from k2m_core.errors import UserError
from k2m_core.runs import TrainConfig, latest_checkpoint
from k2m_core.train.checkpoint import load_checkpoint, save_checkpoint, unwrap
from k2m_core.train.distributed import Dist, all_reduce_mean
from k2m_core.train.rundir import FINISHED, METRICS, MetricsLog


def lr_factor(step: int, config: TrainConfig) -> float:
    warm = min(1.0, (step + 1) / max(1, config.warmup_steps))
    decays = sum(step >= m * config.steps for m in config.lr_milestones)
    return warm * config.lr_gamma**decays


def fit(model: torch.nn.Module, batches: torch.utils.data.Dataset, config: TrainConfig, run_dir: Path, *,
        dist: Dist, device: torch.device, resume: bool = False,
        evaluate: Callable[[torch.nn.Module, int], dict] | None = None,
        stop: Callable[[dict], bool] | None = None,
        progress: Callable[..., None] | None = None) -> dict:
    """Train ``model`` on ``batches[step]`` for ``config.steps`` steps; returns the last metrics.

    ``stop(metrics)``, asked on rank 0 after each evaluation, ends training early (early stopping):
    that step is checkpointed and the run marked finished."""
    config = config.validate()
    run_dir = Path(run_dir)
    torch.manual_seed(config.seed + dist.rank)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
    start, bad_steps = 0, 0
    if resume:
        state = load_checkpoint(latest_checkpoint(run_dir), model, optimizer, scheduler)
        start, bad_steps = state["step"], state["extra"].get("bad_steps", 0)
    net = model
    if dist.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile and device.type == "cuda":
        net = torch.compile(net)
    use_bf16 = config.bf16 and device.type == "cuda"
    log = MetricsLog(run_dir / METRICS, resume_step=start) if dist.is_main else None
    # Its own generator: a DataLoader otherwise draws a seed from the global RNG, which would make
    # a resumed run's dropout masks differ from an uninterrupted one.
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(start, config.steps),
                                         num_workers=config.workers, pin_memory=device.type == "cuda",
                                         generator=torch.Generator().manual_seed(config.seed))
    last: dict = {}
    done, stopping = start, False
    tic, samples = time.perf_counter(), 0
    net.train()
    for step, batch in zip(range(start, config.steps), loader):
        batch = batch.to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            out = net(**batch.model_inputs())
        loss = out.loss
        finite = torch.isfinite(all_reduce_mean(loss.detach().float(), dist))
        optimizer.zero_grad(set_to_none=True)
        if finite:
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            finite = torch.isfinite(all_reduce_mean(grad_norm.detach().float(), dist))
        if finite:
            optimizer.step()
        else:
            bad_steps += 1
            if bad_steps > config.max_bad_steps:
                raise UserError(f"training diverged: {bad_steps} steps had a non-finite loss or gradient "
                                f"(last at step {step}); lower the learning rate (--set train.lr=…), check "
                                f"the data with `k2m data validate`, or resume from an earlier checkpoint")
        scheduler.step()
        samples += len(batch) * dist.world_size

        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            terms = {k: all_reduce_mean(v.detach().float(), dist).item() for k, v in out.terms.items()}
            elapsed = time.perf_counter() - tic
            last = {"step": done, "loss": all_reduce_mean(loss.detach().float(), dist).item(),
                    "lr": scheduler.get_last_lr()[0], "samples_per_s": samples / elapsed,
                    "bad_steps": bad_steps, **terms}
            tic, samples = time.perf_counter(), 0
            if log is not None:
                log.write(last)
        if evaluate is not None and (done % config.eval_every == 0 or done == config.steps):
            if dist.is_main:
                net.eval()
                with torch.no_grad():
                    metrics = {"step": done, **{f"eval/{k}": v for k, v in evaluate(unwrap(model), done).items()}}
                net.train()
                log.write(metrics)
                last.update(metrics)
                stopping = stop is not None and stop(metrics)
            stopping = _agree(stopping, dist, device)
        if stopping or done % config.save_every == 0 or done == config.steps:
            if dist.is_main:
                save_checkpoint(run_dir, done, model, optimizer, scheduler, {"bad_steps": bad_steps})
            _barrier(dist)
        if progress is not None and dist.is_main:
            progress(1, loss=float(last.get("loss", math.nan)))
        if stopping:
            break
    if dist.is_main:
        (run_dir / FINISHED).write_text(f'{{"steps": {done}, "stopped_early": {str(stopping).lower()}}}\n')
    # Leave together: a rank that tears gloo down while another is still busy can make that one
    # abort (SIGABRT) on its way out, after all the work is saved.
    _barrier(dist)
    return last


def _agree(flag: bool, dist: Dist, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (doubles as the barrier after an evaluation)."""
    if not dist.enabled:
        return bool(flag)
    value = torch.tensor([float(flag)], device=device)
    torch.distributed.broadcast(value, 0)
    return bool(value.item())


def _barrier(dist: Dist) -> None:
    if dist.enabled:
        torch.distributed.barrier()
