"""What every trainer does around `fit`, in one place::

    with training_session(config, out, resume=…, force=…, command=…, progress=…) as session:
        config = prepare(config, session.dataset)   # fill in what the run records
        session.start(config)                       # run directory, barrier, seed
        model, batches = …
        return session.fit(model, batches, evaluate=…)

The session joins the process group (under torchrun), opens the dataset and checks its keypoints
(the cheap part of `k2m data validate`: NaN losses otherwise), and on the way out —
finished or failed — closes the dataset (so the same process may write caches to it afterwards)
and leaves the process group. A run directory the session made is removed again if training fails
before its first checkpoint.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from k2m_core.data.dataset import Dataset
from k2m_core.train.distributed import Dist


@dataclass
class Session:
    out: Path  # the run directory
    resume: bool
    force: bool
    command: str
    progress: Callable[..., None] | None
    dist: Dist
    device: torch.device
    dataset: Dataset
    config: Any = field(default=None)
    created: bool = False  # this session made the run directory

    def start(self, config) -> None:
        """Make the run directory with ``config`` (rank 0 of a new run; of a resumed one, record a
        new length), wait for every rank, then seed, so every rank starts from identical weights."""
        from k2m_core.train.rundir import create_run_dir, record_length

        self.config = config
        if self.dist.is_main:
            if self.resume:
                record_length(self.out, config)
            else:
                create_run_dir(self.out, config, force=self.force, command=self.command)
                self.created = True
        if self.dist.enabled:
            torch.distributed.barrier()
        torch.manual_seed(config.train.seed)

    def fit(self, model: torch.nn.Module, batches, *, evaluate=None, stop=None) -> dict:
        """Train ``model`` on ``batches`` per the started config; the last logged metrics."""
        from k2m_core.train.loop import fit

        if self.config is None:
            raise RuntimeError("Session.start(config) must come before Session.fit")
        return fit(model, batches, self.config.train, self.out, dist=self.dist, device=self.device,
                   resume=self.resume, evaluate=evaluate, stop=stop, progress=self.progress)


@contextmanager
def training_session(config, out: Path, *, resume: bool = False, force: bool = False, command: str = "",
                     progress: Callable[..., None] | None = None) -> Iterator[Session]:
    """A `Session` for training ``config`` (its ``train.device``, its ``data``) into ``out``."""
    from k2m_core.loading import resolve_device
    from k2m_core.preprocess.validate import require_sound_keypoints
    from k2m_core.train.distributed import init_distributed, shutdown
    from k2m_core.train.rundir import discard_unstarted

    dist, device = init_distributed(resolve_device(config.train.device))
    try:
        dataset = Dataset(config.data)
        try:
            require_sound_keypoints(dataset)
            session = Session(Path(out), resume, force, command, progress, dist, device, dataset)
            try:
                yield session
            except BaseException:
                if session.created:  # failed before its first checkpoint: nothing to resume, and it
                    discard_unstarted(session.out)  # would make the same --out refuse to start again
                raise
        finally:
            dataset.close()
    finally:
        shutdown(dist)
