"""Leaderboard -> PNG: mean main score against encoding speed (tokens/s from the profiler).

Complete models are filled dots; a model with failed or missing tasks is a hollow dot at
its mean over ok tasks, labelled "incomplete". Without any profile figures the plot falls
back to a bar chart of the means and says why.
"""

from __future__ import annotations

import io

from evalkit.leaderboard.schema import Leaderboard, ModelSummary


def _speed(s: ModelSummary) -> tuple[float | None, str]:
    if s.speed.tokens_per_s:
        return s.speed.tokens_per_s, "tokens/s"
    if s.speed.texts_per_s:
        return s.speed.texts_per_s, "texts/s"
    return None, ""


def to_png(lb: Leaderboard, dpi: int = 120) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    points = []
    unit = "tokens/s" if any(s.speed.tokens_per_s for s in lb.summary) else "texts/s"
    for s in lb.summary:
        x, u = _speed(s)
        y = s.mean if s.complete else s.mean_available
        if x is not None and y is not None and u == unit:
            points.append((s, x, 100 * y))

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=dpi)
    if points:
        for s, x, y in points:
            ax.scatter([x], [y], s=70, facecolors="tab:blue" if s.complete else "none", edgecolors="tab:blue", zorder=3)
            label = s.model + ("" if s.complete else " (incomplete)")
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 5), fontsize=9)
        ax.margins(x=0.12, y=0.12)  # room for the labels at the edges
        xs = [x for _, x, _ in points]
        if min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        else:
            ax.set_xlim(left=0)  # a linear axis from 0: distances read as ratios
        ax.set_xlabel(f"encoding speed ({unit}, from the profiler; higher is faster)")
        ax.set_ylabel("mean main score x 100")
        missing = len(lb.summary) - len(points)
        note = f" — {missing} model(s) without speed figures not shown" if missing else ""
        ax.set_title(f"Quality vs speed{note}", fontsize=11)
        ax.grid(True, alpha=0.3)
    else:
        rows = [(s.model + ("" if s.complete else " (incomplete)"), 100 * (s.mean if s.complete else (s.mean_available or 0)))
                for s in lb.summary if (s.mean if s.complete else s.mean_available) is not None]
        ax.barh([r[0] for r in rows][::-1], [r[1] for r in rows][::-1], color="tab:blue")
        ax.set_xlabel("mean main score x 100")
        ax.set_title("Mean score (no profile figures in the results: run with the profiler callback for speed)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
