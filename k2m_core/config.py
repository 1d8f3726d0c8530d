"""Typed dataclass configs ↔ TOML, with ``--set section.key=value`` overrides.

A run's config is a dataclass whose fields are plain values (bool, int, float, str, tuples of
them) or nested dataclasses (TOML tables). `to_toml` writes it fully resolved; `from_toml` reads
it back, refusing unknown keys so a typo never passes silently. Every dataclass that has a
``validate()`` method is validated as it is built, so a config from a file, a preset, options or
``--set`` is checked in one place; a value out of range is reported as the user gave it (the
option, the ``--set`` item or the file).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from k2m_core.errors import ConfigError, UserError

T = TypeVar("T")


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML basic strings
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(config: Any) -> str:
    """Nested dataclass → TOML text (scalars first, then one table per nested dataclass)."""
    lines: list[str] = []

    def emit(obj: Any, prefix: str) -> None:
        tables = []
        for field in dataclasses.fields(obj):
            value = getattr(obj, field.name)
            if dataclasses.is_dataclass(value):
                tables.append((field.name, value))
            elif value is not None:
                lines.append(f"{field.name} = {_format(value)}")
        for name, value in tables:
            lines.append("")
            lines.append(f"[{prefix}{name}]")
            emit(value, f"{prefix}{name}.")

    emit(config, "")
    return "\n".join(lines).lstrip("\n") + "\n"


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0], where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, where) for v in value) if origin is tuple else [
            _coerce(v, inner, where) for v in value]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"{where}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise UserError(f"{where}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{where}: expected a string, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build dataclass ``cls`` from a dict, recursing into nested dataclasses; unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, dict):
                raise UserError(f"{where}.{name}: expected a table")
            try:
                kwargs[name] = from_dict(annotation, value, f"{where}.{name}")
            except ConfigError as exc:
                raise exc.within(name) from None
        else:
            kwargs[name] = _coerce(value, annotation, f"{where}.{name}")
    config = cls(**kwargs)
    if callable(getattr(config, "validate", None)):
        config.validate()
    return config


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def read_toml(path: str | Path, fix: str = "fix the file") -> dict:
    """The TOML file ``path`` as a dict; a `UserError` saying ``fix`` if it cannot be read. The one
    TOML reader of k2m (``tomllib``, or ``tomli`` on Python 3.10)."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({exc}); {fix}") from None


def from_toml(cls: type[T], path: str | Path, fix: str = "fix the file or drop --config") -> T:
    data = read_toml(path, fix)
    try:
        return from_dict(cls, data, str(path))
    except ConfigError as exc:
        raise UserError(f"{path}: {exc}") from None


def option_name(key: str) -> str:
    """The command-line option that sets config ``key``: its last part, e.g. ``--batch-size`` for
    ``train.batch_size`` (every trainer names its options so)."""
    return "--" + key.rsplit(".", 1)[-1].replace("_", "-")


def apply_overrides(config: T, overrides: list[str], options: dict[str, Any] | None = None) -> T:
    """Set ``options`` (config key → value of the option that sets it, see `option_name`; None:
    not given), then apply the ``--set section.key=value`` strings (value parsed as TOML, bare
    words as strings), and validate. A value out of range names the option or ``--set`` item."""
    data = to_dict(config)
    items = [(f"{key}={_format(value)}", f"{option_name(key)} {value}")
             for key, value in (options or {}).items() if value is not None]
    items += [(item, f"--set {item}") for item in overrides]
    given: dict[str, str] = {}  # key → what set it, as the user wrote it
    for item, label in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected key=value, e.g. --set train.lr=1e-4")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise UserError(f"--set {item!r}: no config section {part!r}")
            node = node[part]
        if parts[-1] not in node:
            raise UserError(f"--set {item!r}: unknown key {key!r}; known here: {', '.join(node)}")
        node[parts[-1]] = value
        given[key.strip()] = label
    try:
        return from_dict(type(config), data, "--set")
    except ConfigError as exc:
        raise UserError(f"{given[exc.key]}: {exc.why}" if exc.key in given else str(exc)) from None
