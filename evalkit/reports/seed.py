"""The seed article's comparison table, every row measured (``+experiment=seed_compare``).

The article (shared/seed/) compares Qwen3-Embedding-0.6B and Jina v2 by model size, load
time, short-sentence and 1k-token latency, GPU memory, maximum length, output dimension,
and one cosine score. Here each row comes from a result file: the perf benchmark for cost,
zh_passkey / zh_needle for the *measured* effective length beside the configured one, and
zh_longdoc / mixed_lang / code_search for quality with 95% intervals. Written as Markdown,
HTML (plots embedded) and PNG beside the leaderboard of the run or sweep.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from evalkit.leaderboard.plot import depth_curves
from evalkit.leaderboard.schema import Cell, Leaderboard
from evalkit.tasks.perf.table import fmt_mb, fmt_ms
from evalkit.results import atomic_write_bytes, atomic_write_text

QUALITY = (("中文长文档检索 Chinese long-doc retrieval", "zh_longdoc"), ("中英混合 mixed-language", "mixed_lang"),
           ("代码检索 code search", "code_search"))
LONG = (("有效长度 effective length (passkey)", "zh_passkey"), ("有效长度 effective length (needle)", "zh_needle"))
TASKS = ("perf", "zh_longdoc", "mixed_lang", "code_search", "zh_passkey", "zh_needle")


def _quality(cell: Cell | None) -> str:
    if cell is None:
        return "not run"
    if cell.status != "ok" or cell.main_score is None:
        return cell.status.upper()
    hw = None if cell.ci_low is None else (cell.ci_high - cell.ci_low) / 2
    return f"{100 * cell.main_score:.2f}" + (f" ±{100 * hw:.2f}" if hw is not None else "")


DEEP = ("8k–32k", ">32k")  # evidence depth buckets of the "beyond 8k tokens" row


def deep_evidence(cell: Cell | None) -> str:
    """zh_longdoc's queries whose evidence lies beyond 8k of the model's tokens: score x 100 with
    its 95% interval, the queries, and how many of them this variant never read."""
    if cell is None or cell.status != "ok":
        return "not run" if cell is None else cell.status.upper()
    deep = [b for b in cell.by_depth or [] if b.bucket in DEEP and b.queries]
    if not deep:
        return "no queries that deep" if cell.by_depth else "–"
    n, weight = sum(b.queries for b in deep), sum(b.weight for b in deep)
    score = sum(b.weight * b.score for b in deep) / weight
    one = deep[0] if len(deep) == 1 and deep[0].ci_low is not None else None  # an interval per bucket only
    ci = f" [{100 * one.ci_low:.1f}, {100 * one.ci_high:.1f}]" if one else ""
    unread = sum(b.beyond_reach or 0 for b in deep)
    return f"{100 * score:.2f}{ci} ({n} queries" + (f", {unread} unread" if unread else ", all read") + ")"


def seed_rows(lb: Leaderboard, perf: dict[str, dict]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(model columns, [(row label, cells)]): the article's table for the board's models."""
    models = [m.id for m in lb.models]
    entries = {m.id: m for m in lb.models}
    cells = {(c.model, c.task): c for c in lb.cells}

    def f(m):
        return perf.get(m) or {}

    def size(m):
        p, b = entries[m].parameters or f(m).get("parameters"), entries[m].weight_bytes or f(m).get("weight_bytes")
        return "on the server" if p is None and b is None else f"{(p or 0) / 1e6:,.1f} M params, {fmt_mb((b or 0) / 2**20)}"

    def memory(m):
        at = f(m).get("at_1k") or {}
        kind = f(m).get("memory_kind")
        value = at.get("gpu_peak_allocated_mb") if kind == "gpu" else at.get("rss_peak_mb") if kind == "rss" else None
        return "on the server" if kind and kind.startswith("none") else (f"{fmt_mb(value)} ({'GPU' if kind == 'gpu' else 'RSS'})"
                                                                           if value is not None else "–")

    def effective(m, task):
        c = cells.get((m, task))
        if c is None or c.status != "ok":
            return "not run" if c is None else c.status.upper()
        return f"{c.effective_length:,} tokens" if c.effective_length else "< shortest tested length"

    rows = [
        ("模型大小 model size", [size(m) for m in models]),
        ("加载时间 load time", [f"{f(m)['load_seconds']:.2f} s" if f(m).get("load_seconds") is not None else "–" for m in models]),
        ("单句延迟 short sentence (batch 1)", [fmt_ms((f(m).get("short") or {}).get("latency_ms")) for m in models]),
        ("长文本延迟 1k tokens (batch 1)", [fmt_ms((f(m).get("at_1k") or {}).get("latency_ms"))
                                       + (" (truncated)" if (f(m).get("at_1k") or {}).get("truncated") else "") for m in models]),
        ("峰值内存 peak memory at 1k tokens", [memory(m) for m in models]),
        ("最大支持长度 configured max length", [f"{entries[m].max_tokens:,} tokens" if entries[m].max_tokens else "–" for m in models]),
        *[(label, [effective(m, task) for m in models]) for label, task in LONG],
        ("真实文本 real text, evidence beyond 8k tokens (zh_longdoc, nDCG@10 x 100)",
         [deep_evidence(cells.get((m, "zh_longdoc"))) for m in models]),
        ("输出维度 output dimension", [str(entries[m].dimension or f(m).get("dim") or "–") for m in models]),
        *[(label + " (main score x 100 ± 95% CI)", [_quality(cells.get((m, task))) for m in models]) for label, task in QUALITY],
        ("device", [f(m).get("device") or ", ".join(entries[m].devices) or "–" for m in models]),
    ]
    return models, rows


def to_markdown(lb: Leaderboard, perf: dict[str, dict]) -> str:
    models, rows = seed_rows(lb, perf)
    out = ["# The seed article's table, measured", "",
           "Every row from a result file of this run (perf benchmark, zh_passkey / zh_needle, zh_longdoc, "
           "mixed_lang, code_search). Effective length: the longest tested length scoring at least 90% of the "
           "score at the shortest length.", "",
           "| 指标 metric | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    out += [f"| {label} | " + " | ".join(c.replace("|", "/") for c in cells) + " |" for label, cells in rows]
    out += ["", "The article's deployment advice (int8 / fp16, compressed vectors), measured: "
            "`+experiment=deploy_compare` writes deploy_report.md (docs/deploy.md)."]
    return "\n".join(out) + "\n"


def curves_png(lb: Leaderboard, perf: dict[str, dict]) -> bytes:
    """Latency and memory vs length (perf), score vs passkey/needle length, score by document length
    and by evidence depth."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(21, 4.3), dpi=110)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors: dict[str, str] = {}

    def color(model: str) -> str:  # one colour per model across the panels
        return colors.setdefault(model, cycle[len(colors) % len(cycle)])

    for model, fig_ in perf.items():
        pts = [p for p in fig_.get("points", []) if p.get("batch") == 1 and p.get("latency_ms") and not p.get("truncated")]
        if pts:
            axes[0].plot([p["tokens"] for p in pts], [p["latency_ms"] for p in pts], marker="o", label=model, color=color(model))
    axes[0].set(xscale="log", yscale="log", xlabel="input length (model tokens)", ylabel="latency, batch 1 (ms)",
                title="latency vs length")
    for c in lb.cells:
        if c.task in ("zh_passkey", "zh_needle") and c.status == "ok" and c.subsets:
            pts = sorted((int(s.subset), s.main_score) for s in c.subsets if s.subset.isdigit() and s.main_score is not None)
            axes[1].plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", linestyle="-" if c.task == "zh_passkey" else "--", color=color(c.model),
                         label=f"{c.model} ({c.task.removeprefix('zh_')})")
    axes[1].set(xscale="log", xlabel="document length (reference tokens)", ylabel="nDCG@1 x 100",
                title="passkey / needle: score vs length")
    for c in lb.cells:
        if c.task == "zh_longdoc" and c.by_length:
            pts = [(b.bucket, 100 * b.score) for b in c.by_length if b.score is not None]
            axes[2].plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=c.model, color=color(c.model))
    axes[2].set(xlabel="relevant document length (model tokens)", ylabel="nDCG@10 x 100", title="zh_longdoc by length")
    depth_curves(axes[3], [c for c in lb.cells if c.task == "zh_longdoc" and c.by_depth])
    axes[3].set(ylabel="nDCG@10 x 100", title="zh_longdoc by evidence depth")
    from matplotlib.ticker import NullFormatter

    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_minor_formatter(NullFormatter())  # log-axis minor labels overlap at this width
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_seed_report(lb: Leaderboard, perf: dict[str, dict], folder: Path, stem: str = "seed_report") -> dict[str, Path]:
    folder = Path(folder)
    md, png = to_markdown(lb, perf), curves_png(lb, perf)
    paths = {"md": folder / f"{stem}.md", "png": folder / f"{stem}.png", "html": folder / f"{stem}.html"}
    atomic_write_text(paths["md"], md + f"\n![latency, long-context, by-length and by-depth curves]({stem}.png)\n")
    atomic_write_bytes(paths["png"], png)
    models, rows = seed_rows(lb, perf)
    table = ("<table><thead><tr><th>指标 metric</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in models)
             + "</tr></thead><tbody>" + "".join(
                 f"<tr><th>{html.escape(label)}</th>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
                 for label, cells in rows) + "</tbody></table>")
    page = ("<!DOCTYPE html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>seed comparison</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:.3em .6em}"
            "table{border-collapse:collapse}</style></head><body><h1>The seed article's table, measured</h1>"
            + table + f'<p><img style="max-width:100%" src="data:image/png;base64,{base64.b64encode(png).decode()}"></p>'
            "</body></html>\n")
    atomic_write_text(paths["html"], page)
    return paths
