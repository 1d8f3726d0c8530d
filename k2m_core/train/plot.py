"""Training curves from a run's ``metrics.jsonl`` as one PNG (`k2m plot`)."""

from __future__ import annotations

import math
from pathlib import Path

from k2m_core.atomic import atomic_path
from k2m_core.errors import UserError
from k2m_core.train.rundir import read_metrics


def plot_run(run_dir: Path, out: Path | None = None) -> Path:
    """One panel per logged quantity (loss terms, lr, eval metrics), against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                steps, values = series.setdefault(key, ([], []))
                steps.append(record["step"])
                values.append(value)
    if not series:
        raise UserError(f"{run_dir}: metrics.jsonl has no numbers to plot yet")
    names = sorted(series, key=lambda k: (k.startswith("eval/"), k != "loss", k))
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        steps, values = series[name]
        ax.plot(steps, values, marker="." if len(steps) < 30 else None)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        if min(values) > 0 and max(values) / min(values) > 50:
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    out = Path(out) if out else Path(run_dir) / "curves.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out
