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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from k2m_core.config import apply_overrides, as_overrides, from_dict, read_toml
from k2m_core.errors import UserError
from k2m_core.t2m.config import LengthConfig, MaskedConfig, ResidualConfig, TextSpec, TokenSpec
from k2m_core.tokenizer.config import TokenizerConfig

CONFIG = "config.toml"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
WEIGHTS = "model.safetensors"

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
    return from_dict(by_kind[found], data, str(path))


def resolve_run_config(command: str, cls: type[T], default: Callable[[], T], *, resume: Path | None,
                       config_file: Path | None, required: dict[str, Any], fresh: dict[str, Any],
                       settings: dict[str, Any], overrides: list[str]) -> T:
    """The config a training ``command`` runs with, validated.

    With ``resume``: that run's own ``config.toml``, and none of the ``fresh`` options (name →
    value given, None if not) nor ``overrides`` may be given. Otherwise every ``required`` option
    must be given; the config is ``config_file`` (which must be of ``cls``'s kind) or ``default()``,
    then ``settings`` (config key → value of an option; None: not given), then the ``--set``
    ``overrides``."""
    if resume is not None:
        given = [name for name, value in fresh.items() if value is not None]
        if given or overrides:
            raise UserError(f"--resume continues {resume} with its own {CONFIG}; drop {', '.join(given) or '--set'}")
        config = read_run_config(resume, cls)
    else:
        missing = [name for name, value in required.items() if value is None]
        if missing:
            raise UserError(f"{command} needs {', '.join(required)} (or --resume RUN_DIR); missing {', '.join(missing)}")
        if config_file is not None:
            data = read_toml(config_file, "fix the file or drop --config")
            kind = kind_of(cls)
            if data.get("kind", "vq") != kind:
                raise UserError(f"--config {config_file}: a {data.get('kind', 'vq')} config, not a {kind} one")
            config = from_dict(cls, data, str(config_file))
        else:
            config = default()
        config = apply_overrides(config, as_overrides(settings) + list(overrides))
    config.model.validate()
    return config


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest complete checkpoint folder of ``run_dir``."""
    pointer = Path(run_dir) / CHECKPOINTS / LATEST
    if not pointer.exists():
        raise UserError(f"{run_dir}: no finished checkpoint to resume from ({CHECKPOINTS}/{LATEST} is missing)")
    return pointer.parent / pointer.read_text().strip()


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
