"""The shared training infrastructure, exercised with a small stand-in model."""

import json
import os
import socket
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from k2m_core.config import apply_overrides, from_toml, to_toml
from k2m_core.data.dataset import Dataset, DatasetWriter
from k2m_core.errors import UserError
from k2m_core.keypoints import make_clip
from k2m_core.runs import TrainConfig, latest_checkpoint, load_weights
from k2m_core.train.checkpoint import load_checkpoint, save_weights
from k2m_core.train.distributed import Dist, shutdown
from k2m_core.train.loop import fit
from k2m_core.train.rundir import create_run_dir, read_metrics
from k2m_core.keypoints import mirror_clip
from k2m_core.train.windows import WindowSampler


class ToyModel(torch.nn.Module):
    """Autoencodes normalised windows; has dropout so RNG state matters for resume."""

    def __init__(self, nan_after: int | None = None, dropout: float = 0.2, crash_after: int | None = None):
        super().__init__()
        self.crash_after = crash_after
        self.net = torch.nn.Sequential(torch.nn.Linear(51, 32), torch.nn.Dropout(dropout), torch.nn.ReLU(),
                                       torch.nn.Linear(32, 51))
        self.calls, self.nan_after = 0, nan_after

    def forward(self, keypoints, valid, focal):
        x = keypoints[..., :17, :] / torch.tensor([1000.0, 1000.0, 1.0])
        x = x.flatten(-2)
        err = ((self.net(x) - x) ** 2).mean(-1)
        loss = (err * valid).sum() / valid.numel()
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise KeyboardInterrupt  # the machine goes away mid-run
        if self.nan_after is not None and self.calls > self.nan_after:
            loss = loss * float("nan")
        return SimpleNamespace(loss=loss, terms={"err": loss.detach()})


def make_dataset(path, clips=24, seed=0):
    rng = np.random.default_rng(seed)
    with DatasetWriter(path) as writer:
        for i in range(clips):
            frames = int(rng.integers(20, 90))
            t = np.linspace(0, 2 * np.pi, frames)[:, None, None]
            xy = 500 + 200 * np.sin(t + rng.uniform(0, 6, (1, 17, 2)))
            writer.add_clip(f"c{i}", make_clip(xy, rng.uniform(0.5, 1, (frames, 17)), 1000, 1000), ["x"])
    return Dataset(path)


@dataclass
class Section:
    width: int = 8
    rate: float = 0.5
    name: str = "a"
    sizes: tuple[int, ...] = (1, 2)
    flag: bool = False


@dataclass
class RunConfig:
    model: Section = field(default_factory=Section)
    train: TrainConfig = field(default_factory=TrainConfig)


def test_config_toml_round_trip_and_overrides(tmp_path):
    config = RunConfig(model=Section(width=3, name='quote "me"', sizes=(4, 5)))
    (tmp_path / "c.toml").write_text(to_toml(config))
    assert from_toml(RunConfig, tmp_path / "c.toml") == config
    changed = apply_overrides(config, ["model.width=16", "train.lr=1e-3", "model.name=bob", "model.flag=true",
                                       "model.sizes=[7]"])
    assert (changed.model.width, changed.train.lr, changed.model.name, changed.model.flag, changed.model.sizes) == (
        16, 1e-3, "bob", True, (7,))
    with pytest.raises(UserError, match="unknown key"):
        apply_overrides(config, ["model.widht=3"])
    with pytest.raises(UserError, match="expected an integer"):
        apply_overrides(config, ["model.width=wide"])
    with pytest.raises(UserError, match="key=value"):
        apply_overrides(config, ["model.width"])
    (tmp_path / "bad.toml").write_text("[model]\nwidth = 'x'\n")
    with pytest.raises(UserError, match="bad.toml"):
        from_toml(RunConfig, tmp_path / "bad.toml")


def test_windows_are_deterministic_padded_and_sharded(tmp_path):
    ds = make_dataset(tmp_path / "d.h5")
    full = WindowSampler(ds, "train", window=64, global_batch=8, seed=3)
    a, b = full[5], full[5]
    assert torch.equal(a.keypoints, b.keypoints) and not torch.equal(a.keypoints, full[6].keypoints)
    assert a.keypoints.shape == (8, 64, 18, 3)
    short = a.valid.sum(1) < 64
    assert short.any() and (a.keypoints[~a.valid] == 0).all()
    halves = [WindowSampler(ds, "train", 64, 8, 3, rank=r, world_size=2)[5] for r in (0, 1)]
    assert torch.equal(torch.cat([h.keypoints for h in halves]), a.keypoints)
    with pytest.raises(UserError, match="divisible"):
        WindowSampler(ds, "train", 64, 7, 3, world_size=2)


def test_mirror_swaps_sides_and_flips_x():
    clip = make_clip(np.random.default_rng(0).uniform(0, 640, (3, 17, 2)), np.ones((3, 17)), 640, 480)
    flipped = mirror_clip(clip)
    np.testing.assert_allclose(flipped[:, 1, 0], 640 - clip[:, 2, 0])  # left eye ← right eye, mirrored
    np.testing.assert_allclose(flipped[:, 1, 1], clip[:, 2, 1])
    np.testing.assert_allclose(mirror_clip(flipped), clip, atol=1e-3)


def test_weights_round_trip_bit_exact(tmp_path):
    model = ToyModel()
    save_weights(model, tmp_path / "w.safetensors")
    other = ToyModel()
    load_weights(other, tmp_path / "w.safetensors")
    for p, q in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(p, q)
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read weights"):
        load_weights(other, tmp_path / "bad.safetensors")


def run_toy(run_dir, ds, steps, *, resume=False, create=True, save_every=5, model=None, batch=8, dist=Dist(),
            seed=0):
    config = TrainConfig(steps=steps, batch_size=batch, lr=1e-2, warmup_steps=3, log_every=1,
                         save_every=save_every, eval_every=10**9, seed=seed, device="cpu")
    if create and not resume:
        create_run_dir(run_dir, config, force=True, command="test")
    torch.manual_seed(0)
    model = model or ToyModel()
    sampler = WindowSampler(ds, "train", 32, batch, seed, rank=dist.rank, world_size=dist.world_size)
    fit(model, sampler, config, run_dir, dist=dist, device=torch.device("cpu"), resume=resume)
    return model


def test_resume_continues_exactly(tmp_path):
    ds = make_dataset(tmp_path / "d.h5")
    straight = run_toy(tmp_path / "a", ds, 12)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        run_toy(tmp_path / "b", ds, 12, save_every=6, model=ToyModel(crash_after=8))
    resumed = run_toy(tmp_path / "b", ds, 12, resume=True, save_every=6)
    for p, q in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(p, q)
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [m["step"] for m in b] == list(range(1, 13))
    assert [m["loss"] for m in a] == [m["loss"] for m in b]
    assert latest_checkpoint(tmp_path / "b").name == "step_00000012"
    state = load_checkpoint(latest_checkpoint(tmp_path / "b"), ToyModel())
    assert state["step"] == 12


def test_nan_guard_skips_then_stops(tmp_path):
    ds = make_dataset(tmp_path / "d.h5")
    config_model = ToyModel(nan_after=4)
    with pytest.raises(UserError, match="diverged"):
        run_toy(tmp_path / "r", ds, 60, model=config_model)
    metrics = read_metrics(tmp_path / "r")
    assert metrics[3]["bad_steps"] == 0 and metrics[-1]["bad_steps"] == 20
    assert all(np.isfinite(p.detach().numpy()).all() for p in config_model.parameters())


def test_run_dir_refuses_to_overwrite(tmp_path):
    create_run_dir(tmp_path / "r", TrainConfig(), force=False, command="x")
    assert json.loads((tmp_path / "r" / "env.json").read_text())["command"] == "x"
    with pytest.raises(UserError, match="before its first checkpoint.*--force"):
        create_run_dir(tmp_path / "r", TrainConfig(), force=False, command="x")
    (tmp_path / "r" / "checkpoints" / "step_00000001").mkdir()
    (tmp_path / "r" / "checkpoints" / "latest").write_text("step_00000001")
    with pytest.raises(UserError, match="--resume"):
        create_run_dir(tmp_path / "r", TrainConfig(), force=False, command="x")
    create_run_dir(tmp_path / "r", TrainConfig(), force=True, command="y")
    assert not (tmp_path / "r" / "checkpoints" / "latest").exists()


def test_force_never_replaces_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="not a k2m run directory"):
        create_run_dir(tmp_path / "home", TrainConfig(), force=True, command="x")
    assert (tmp_path / "home" / "thesis.tex").read_text() == "precious"


def _ddp_worker(rank, port, data_path, run_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2")
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        run_toy(run_dir, Dataset(data_path), 6, create=False, dist=Dist(rank=rank, world_size=2),
                model=ToyModel(dropout=0.0))
    finally:
        shutdown(Dist(rank=rank, world_size=2))  # the trainers' own teardown


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_one(tmp_path):
    ds = make_dataset(tmp_path / "d.h5")
    torch.manual_seed(0)
    single = run_toy(tmp_path / "one", ds, 6, model=ToyModel(dropout=0.0))  # no dropout: same maths on any rank
    create_run_dir(tmp_path / "two", TrainConfig(), force=True, command="test")
    mp.start_processes(_ddp_worker, args=(_free_port(), str(tmp_path / "d.h5"), tmp_path / "two"), nprocs=2,
                       start_method="spawn")
    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [m["step"] for m in two] == list(range(1, 7))
    np.testing.assert_allclose([m["loss"] for m in two], [m["loss"] for m in one], rtol=1e-5)
    ddp_weights = ToyModel()
    load_weights(ddp_weights, latest_checkpoint(tmp_path / "two") / "model.safetensors")
    for p, q in zip(single.state_dict().values(), ddp_weights.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
