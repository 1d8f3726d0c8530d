"""Terminal output shared by commands: progress bars and tables on stderr, honouring --quiet."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import typer


def parse_size(text: str | None) -> tuple[float, float] | None:
    """``--size WxH`` (also ``W,H``) → (width, height) in pixels; None when not given."""
    if not text:
        return None
    from k2m_core.errors import UserError

    try:
        width, height = (float(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise UserError(f"--size must look like 1920x1080, got {text!r}") from None
    if not (0 < width < float("inf") and 0 < height < float("inf")):
        raise UserError(f"--size must be positive numbers, got {text!r}")
    return width, height


def is_quiet(ctx: typer.Context) -> bool:
    root = ctx.find_root()
    return bool(getattr(root.obj, "quiet", False))


@contextmanager
def progress(description: str, total: int | None, quiet: bool) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, **fields)``; a rich bar with rate and ETA unless ``quiet``."""
    if quiet:
        yield lambda n=1, **fields: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields) -> None:
            info = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
            bar.update(task, advance=n, info=info)

        yield advance


def print_table(title: str, columns: list[str], rows: list[list], quiet: bool = False) -> None:
    """A rich table on stderr (results that belong on stdout are printed by the command itself)."""
    if quiet:
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in columns:
        table.add_column(name)
    for row in rows:
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    Console(stderr=True).print(table)
