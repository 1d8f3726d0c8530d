"""Run directories: the configs every trainer writes and every loader reads.

A run directory holds::

    config.toml              the fully resolved run config (one of the dataclasses below, as TOML)
    metrics.jsonl, env.json  written while training (`k2m_core.train.rundir`)
    checkpoints/step_N/      model.safetensors, plus state.pt while training
    checkpoints/latest       the name of the newest complete checkpoint

The ``kind`` in ``config.toml`` says which trainer made the run (tokenizer runs from before it was
recorded have none and read as ``vq``). Everything a loader needs is here — the config classes,
`read_run_config`, `latest_checkpoint`, `load_weights` — so inference never imports training code;
`resolve_run_config` is the one way a command turns ``--resume``/``--config``/``--preset``/``--set``
into a config.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from k2m_core.config import apply_overrides, from_dict, read_toml
from k2m_core.errors import ConfigError, UserError
from k2m_core.t2m.config import LengthConfig, MaskedConfig, ResidualConfig, TextSpec, TokenSpec
from k2m_core.tokenizer.config import TokenizerConfig

CONFIG = "config.toml"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
WEIGHTS = "model.safetensors"
_NAME = re.compile(r"step_(\d{8})")  # a checkpoint folder

# kind → (what the run holds, the command that makes one)
KINDS = {
    "vq": ("tokenizer", "k2m train vq"),
    "transformer": ("masked transformer", "k2m train transformer"),
    "residual": ("residual transformer", "k2m train residual"),
    "length": ("length estimator", "k2m train length"),
    "evaluator": ("evaluator", "k2m eval train-evaluator"),
}
T2M_KINDS = ("transformer", "residual", "length")

T = TypeVar("T")


@dataclass
class TrainConfig:
    """The optimisation schedule, shared by every kind of run."""
    steps: int = 100_000
    batch_size: int = 256  # global, over all processes
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 2000
    lr_milestones: tuple[float, ...] = (0.6, 0.85)  # fractions of `steps` where the lr is multiplied by lr_gamma
    lr_gamma: float = 0.05
    grad_clip: float = 1.0
    max_bad_steps: int = 20  # non-finite steps tolerated before stopping
    log_every: int = 10
    eval_every: int = 500
    save_every: int = 500
    seed: int = 0
    device: str = "auto"
    bf16: bool = True  # autocast to bfloat16 on CUDA (ignored on CPU)
    compile: bool = False  # torch.compile the model on CUDA
    workers: int = 0  # DataLoader worker processes producing batches

    def validate(self) -> "TrainConfig":
        """`ConfigError` for the first value out of range."""
        def bad(key: str, why: str):
            raise ConfigError(key, getattr(self, key), why)

        for key in ("steps", "batch_size", "log_every", "eval_every", "save_every"):
            if not getattr(self, key) >= 1:
                bad(key, "must be at least 1")
        for key in ("warmup_steps", "max_bad_steps", "workers"):
            if not getattr(self, key) >= 0:
                bad(key, "must not be negative")
        for key in ("lr", "lr_gamma", "weight_decay"):  # lr 0 freezes the weights: a valid baseline
            if not (math.isfinite(getattr(self, key)) and getattr(self, key) >= 0):
                bad(key, "must be a non-negative number")
        if not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            bad("grad_clip", "must be a positive number")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            bad("betas", "must be two numbers in [0, 1)")
        if not all(0 <= m <= 1 for m in self.lr_milestones):
            bad("lr_milestones", "must be fractions of the steps, in [0, 1]")
        return self


@dataclass
class VQRunConfig:
    """A tokenizer run (`k2m train vq`)."""
    kind: str = "vq"
    data: str = ""  # dataset file (absolute path)
    preset: str = "cpu"
    mirror: float = 0.5  # chance that a training window is mirrored left↔right
    eval_clips: int = 64  # validation clips scored at each evaluation
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class T2MRunConfig:
    """What the three text-to-motion runs share."""
    kind: str = "transformer"  # transformer | residual | length
    data: str = ""  # dataset file (absolute path)
    tokenizer: str = ""  # tokenizer run directory (absolute path)
    preset: str = "cpu"
    eval_clips: int = 256  # validation clips scored at each evaluation
    eval_seed: int = 1234  # masking and draws of the evaluation
    tokens: TokenSpec = field(default_factory=TokenSpec)
    text: TextSpec = field(default_factory=TextSpec)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class TransformerRunConfig(T2MRunConfig):
    model: MaskedConfig = field(default_factory=MaskedConfig)


@dataclass
class ResidualRunConfig(T2MRunConfig):
    kind: str = "residual"
    model: ResidualConfig = field(default_factory=ResidualConfig)


@dataclass
class LengthRunConfig(T2MRunConfig):
    kind: str = "length"
    model: LengthConfig = field(default_factory=LengthConfig)


T2M_CONFIGS = {"transformer": TransformerRunConfig, "residual": ResidualRunConfig, "length": LengthRunConfig}


def kind_of(cls: type) -> str:
    """The ``kind`` a run config class records."""
    return next(f.default for f in dataclasses.fields(cls) if f.name == "kind")


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def read_run_config(run_dir: str | Path, *classes: type) -> Any:
    """The ``config.toml`` of ``run_dir`` as whichever of ``classes`` has the kind it records; a
    `UserError` naming what the run is and which command makes the wanted kind otherwise."""
    run_dir = Path(run_dir)
    by_kind = {kind_of(cls): cls for cls in classes}
    wanted = _a(" or ".join(KINDS[kind][0] for kind in by_kind))
    makers = " / ".join(f"`{KINDS[kind][1]}`" for kind in by_kind)
    path = run_dir / CONFIG
    if not path.is_file():
        raise UserError(f"{run_dir}: not {wanted} run (no {CONFIG}); make one with {makers}")
    data = read_toml(path, f"re-create the run with {makers}")
    found = data.get("kind", "vq")
    if found not in by_kind:
        what = _a(KINDS[found][0]) if found in KINDS else f"a run of unknown kind {found!r}"
        raise UserError(f"{run_dir}: is {what} run, not {wanted} run ({makers} makes those)")
    return _from_file(by_kind[found], data, path)


RESUMABLE = ("train.steps", "train.device", "train.workers")  # settings a resumed run may change


def _from_file(cls: type[T], data: dict, path: Path) -> T:
    try:
        return from_dict(cls, data, str(path))
    except ConfigError as exc:
        raise UserError(f"{path}: {exc}") from None


def resolve_run_config(command: str, cls: type[T], default: Callable[[], T], *, resume: Path | None,
                       config_file: Path | None, required: dict[str, Any], fresh: dict[str, Any],
                       settings: dict[str, Any], overrides: list[str]) -> T:
    """The config a training ``command`` runs with, validated.

    With ``resume``: that run's own ``config.toml``, with the `RESUMABLE` ``settings`` given:
    ``train.steps`` extends the run (to more than it has done; the trainer records the new length),
    device and workers apply to this session. None of the ``fresh`` options (name → value given,
    None if not: every option but those three) nor ``overrides`` may be given.

    Otherwise every ``required`` option must be given; the config is ``config_file`` (which must be
    of ``cls``'s kind) or ``default()``, then ``settings`` (config key → value of an option; None:
    not given), then the ``--set`` ``overrides``. A value out of range names the option, ``--set``
    item or file that gave it."""
    if resume is not None:
        given = [name for name, value in fresh.items() if value is not None]
        if given or overrides:
            raise UserError(f"--resume continues {resume} with its own {CONFIG}; drop {', '.join(given) or '--set'} "
                            "(only --steps, --device and --workers may change)")
        config = read_run_config(resume, cls)
        steps = settings.get("train.steps")
        if steps is not None:
            done = checkpoint_step(latest_checkpoint(resume))
            if steps <= done:
                raise UserError(f"--steps {steps}: {resume} has already done {done} steps; give more to extend it, "
                                "or drop --steps to finish it as configured")
        return apply_overrides(config, [], options={key: settings.get(key) for key in RESUMABLE})
    missing = [name for name, value in required.items() if value is None]
    if missing:
        raise UserError(f"{command} needs {', '.join(required)} (or --resume RUN_DIR); missing {', '.join(missing)}")
    if config_file is not None:
        data = read_toml(config_file, "fix the file or drop --config")
        kind = kind_of(cls)
        if data.get("kind", "vq") != kind:
            raise UserError(f"--config {config_file}: a {data.get('kind', 'vq')} config, not a {kind} one")
        config = _from_file(cls, data, Path(config_file))
    else:
        config = default()
    return apply_overrides(config, list(overrides), options=settings)


def checkpointed(path: Path) -> bool:
    """Whether run directory ``path`` reached its first checkpoint (only then can it be resumed)."""
    return (Path(path) / CHECKPOINTS / LATEST).is_file()


def latest_checkpoint(run_dir: Path) -> Path:
    """The folder ``checkpoints/latest`` names: one of the run's own ``step_NNNNNNNN`` folders."""
    pointer = Path(run_dir) / CHECKPOINTS / LATEST
    if not checkpointed(run_dir):
        if (Path(run_dir) / CONFIG).is_file():
            raise UserError(f"{run_dir}: stopped before its first checkpoint, so there is nothing to resume; start "
                            f"it again with --out {run_dir} --force")
        raise UserError(f"{run_dir}: no finished checkpoint (checkpoints/{LATEST} is missing); is this a k2m run "
                        "directory?")
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{pointer}: cannot read it ({exc})") from None
    if not _NAME.fullmatch(name) or not (pointer.parent / name).is_dir():
        raise UserError(f"{run_dir}: checkpoints/{LATEST} must name one of its own checkpoint folders "
                        f"(step_NNNNNNNN), not {name[:80]!r}; point it at one of: "
                        f"{', '.join(checkpoint_names(run_dir)) or 'none exist'}")
    return pointer.parent / name


def checkpoint_names(run_dir: Path) -> list[str]:
    root = Path(run_dir) / CHECKPOINTS
    return sorted(p.name for p in root.glob("step_*") if _NAME.fullmatch(p.name) and p.is_dir())


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint folder holds (from its name)."""
    return int(_NAME.fullmatch(Path(path).name).group(1))


def load_weights(model, path: Path) -> None:
    """Load the safetensors file ``path`` into ``model`` (a plain module), all keys exactly."""
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise UserError(f"{path}: cannot read weights ({exc}); the checkpoint is damaged or not k2m's") from None
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise UserError(f"{path}: weights do not fit this model (missing {missing[:3]}, unexpected "
                        f"{unexpected[:3]}); was it trained with another config?")
