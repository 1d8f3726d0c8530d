"""`k2m data …`: make, inspect and combine dataset files."""

from __future__ import annotations

import typer

app = typer.Typer(help="Make, inspect and combine dataset files.", no_args_is_help=True)
