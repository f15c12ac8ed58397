"""Leaderboard -> PNG: every task's scores with their 95% bootstrap intervals (whiskers),
and the mean main score against encoding speed (tokens/s from the profiler).

Complete models are filled dots; a model with failed or missing tasks is a hollow dot at
its mean over ok tasks, labelled "incomplete". Without any profile figures the speed panel
falls back to a bar chart of the means and says why. ``length_png``: score by document
length, one line per model, for the retrieval tasks that record it.
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

    fig, (ax_ci, ax) = plt.subplots(1, 2, figsize=(13, 4.8), dpi=dpi, gridspec_kw={"width_ratios": [1.2, 1]})
    _scores_with_intervals(ax_ci, lb)
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
    return _png(fig)


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _scores_with_intervals(ax, lb: Leaderboard) -> None:
    """One group per task, one dot per model, whiskers = the 95% bootstrap interval."""
    models = [s.model for s in lb.summary]
    tasks = [t.name for t in lb.tasks]
    cells = {(c.model, c.task): c for c in lb.cells}
    width = 0.8 / max(1, len(models))
    for j, model in enumerate(models):
        xs, ys, lo, hi = [], [], [], []
        for i, task in enumerate(tasks):
            c = cells.get((model, task))
            if c is None or c.status != "ok" or c.main_score is None:
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(100 * c.main_score)
            low, high = (c.ci_low, c.ci_high) if c.ci_low is not None else (c.main_score, c.main_score)
            # a percentile interval of a tiny sample need not contain the estimate: no negative whiskers
            lo.append(max(0.0, 100 * (c.main_score - low)))
            hi.append(max(0.0, 100 * (high - c.main_score)))
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, label=model)
    ax.set_xticks(range(len(tasks)), tasks, rotation=15, fontsize=8)
    ax.set_xlim(-0.6, len(tasks) - 0.4)
    ax.set_ylabel("main score x 100")
    ax.set_title("Scores with 95% bootstrap intervals", fontsize=11)
    ax.grid(True, axis="y", alpha=0.3)
    if models:
        ax.legend(fontsize=7)


def length_png(lb: Leaderboard, dpi: int = 110) -> bytes | None:
    """Score vs relevant-document length, one panel per task, one line per model; then score vs
    evidence depth (with its intervals) for tasks whose queries carry evidence positions."""
    panels = [(t, "length") for t in sorted({c.task for c in lb.cells if c.by_length})]
    panels += [(t, "depth") for t in sorted({c.task for c in lb.cells if c.by_depth})]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), dpi=dpi, squeeze=False)
    for ax, (task, kind) in zip(axes[0], panels):
        if kind == "length":
            for c in (c for c in lb.cells if c.task == task and c.by_length):
                pts = [(b.bucket, 100 * b.score) for b in c.by_length if b.score is not None]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=c.model)
            ax.set_title(f"{task}: score by document length", fontsize=10)
            ax.set_xlabel("relevant document length (model tokens)")
        else:
            depth_curves(ax, [c for c in lb.cells if c.task == task and c.by_depth])
            ax.set_title(f"{task}: score by evidence depth", fontsize=10)
        ax.set_ylabel("main score x 100")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig)


def depth_curves(ax, cells) -> None:
    """One line per model: score x 100 by evidence-depth bucket, 95% intervals as error bars."""
    for c in cells:
        pts = [b for b in c.by_depth if b.score is not None]
        y = [100 * b.score for b in pts]
        err = [[100 * (b.score - b.ci_low) if b.ci_low is not None else 0 for b in pts],
               [100 * (b.ci_high - b.score) if b.ci_high is not None else 0 for b in pts]]
        ax.errorbar([b.bucket for b in pts], y, yerr=err, marker="o", capsize=3, label=c.model)
    ax.set_xlabel("evidence depth: tokens before it (model tokens)")
