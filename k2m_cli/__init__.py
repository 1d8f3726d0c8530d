"""The `k2m` command line: a thin Typer layer over `k2m_core`. Importing it never imports torch."""
