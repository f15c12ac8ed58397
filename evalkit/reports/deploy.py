"""What each deployment saving costs in quality (``+experiment=deploy_compare``).

One row per variant of the sweep (precision, runtime, compressed vectors) against the
full-precision baseline — the one row whose variant changes none of ``model.dtype``,
``model.runtime``, ``encode.vectors``. Quality: the leaderboard's cells and paired comparisons
(``evalkit.leaderboard.compare``: bootstrap CIs, paired difference with its interval, Holm-corrected
permutation p, W/T/L), built with that baseline. Cost: the perf task of each variant (latency at
batch 1 and at its batch size, texts/s and tokens/s at that batch size, peak memory, load time)
and the bytes per vector each result records (``evalkit.encoders.layers.compress``). Written as
``deploy_report.{md,html,png}``; the plot marks the Pareto front of quality against throughput
and against bytes per vector.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.leaderboard.schema import Comparison, Leaderboard
from evalkit.results import atomic_write_bytes, atomic_write_text

DEPLOY_FIELDS = ("dtype", "runtime", "vectors")
SEP = " · "


@dataclass
class Row:
    """One variant: its quality per task and its cost."""

    variant: str
    scores: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # task -> (score, CI half-width)
    vs_base: dict[str, Comparison] = field(default_factory=dict)
    perf: dict = field(default_factory=dict)
    bytes_per_vector: int | None = None
    dim: int | None = None

    @property
    def mean_score(self) -> float | None:
        return sum(s for s, _ in self.scores.values()) / len(self.scores) if self.scores else None

    def speed(self) -> dict:
        """At the longest length measured at the perf batch size: texts/s, tokens/s, latency, memory."""
        points = [p for p in self.perf.get("points", []) if p.get("latency_ms") and not p.get("truncated")]
        batch = self.perf.get("batch_size")
        big = max((p for p in points if p.get("batch") == batch), key=lambda p: p["tokens"], default=None)
        one = next((p for p in sorted(points, key=lambda p: -p["tokens"]) if p.get("batch") == 1
                    and big is not None and p["tokens"] == big["tokens"]), None)
        if big is None:
            return {}
        per_s = batch / (big["latency_ms"] / 1000)
        return {"tokens": big["tokens"], "batch": batch, "texts_per_s": per_s, "tokens_per_s": per_s * big["tokens"],
                "latency_batch_ms": big["latency_ms"], "latency_1_ms": (one or {}).get("latency_ms"),
                "rss_peak_mb": big.get("rss_peak_mb"), "gpu_peak_mb": big.get("gpu_peak_allocated_mb"),
                "load_seconds": self.perf.get("load_seconds")}


def _deployable(lb: Leaderboard) -> list:
    """The rows of vector models: a sweep's BM25 row (leaderboard.baseline_bm25) has no deployment variants."""
    return [m for m in lb.models if m.backend != "bm25"]


def baseline_of(lb: Leaderboard) -> str:
    """The one row that changes no deployment field; an error naming the rows otherwise."""
    plain = [m.id for m in _deployable(lb)
             if not any(part.split("=")[0] in DEPLOY_FIELDS for part in m.variant.split(SEP)[1:])]
    if len(plain) != 1:
        raise ValueError(f"deploy report: need exactly one full-precision row (no {', '.join(DEPLOY_FIELDS)} "
                         f"change) as the baseline; found {plain or 'none'} among {[m.id for m in lb.models]}")
    return plain[0]


def _vector_facts(result_file: str | None) -> dict:
    if not result_file:
        return {}
    try:
        block = json.loads(Path(result_file).read_text(encoding="utf-8")).get("evalkit") or {}
    except (OSError, ValueError):
        return {}
    return (block.get("computed") or {}).get("vectors") or {}


def deploy_rows(lb: Leaderboard, perf: dict[str, dict], baseline: str) -> list[Row]:
    rows = {m.id: Row(variant=m.id, perf=perf.get(m.id) or {}, dim=m.dimension) for m in _deployable(lb)}
    for cell in lb.cells:
        row = rows.get(cell.model)
        if row is None or cell.task == "perf" or cell.status != "ok" or cell.main_score is None:
            continue
        half = None if cell.ci_low is None else (cell.ci_high - cell.ci_low) / 2
        row.scores[cell.task] = (cell.main_score, half)
        facts = _vector_facts(cell.result_file)
        if facts.get("bytes_per_vector"):
            row.bytes_per_vector, row.dim = facts["bytes_per_vector"], facts.get("dim") or row.dim
    for comp in lb.comparisons:
        if comp.model_b == baseline and comp.model_a in rows:
            rows[comp.model_a].vs_base[comp.task] = comp
    for row in rows.values():
        dim = row.dim or row.perf.get("dim")
        if row.bytes_per_vector is None and dim:
            row.bytes_per_vector = 4 * int(dim)  # no compression layer: the model's float32
    order = [baseline] + [m.id for m in _deployable(lb) if m.id != baseline]
    return [rows[r] for r in order]


def _num(value, digits: int = 1, unit: str = "") -> str:
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def quality_table(rows: list[Row], tasks: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["variant", "task", "score ±95% CI", "Δ vs baseline [95% CI]", "p (Holm)", "W/T/L"]
    out = []
    for row in rows:
        for task in tasks:
            if task not in row.scores:
                out.append([row.variant, task, "not run / failed", "", "", ""])
                continue
            score, half = row.scores[task]
            comp = row.vs_base.get(task)
            diff = sig = wtl = "baseline" if not row.vs_base and row is rows[0] else "–"
            if comp is not None and comp.diff is not None:
                diff = f"{100 * comp.diff:+.2f} [{100 * comp.ci_low:+.2f}, {100 * comp.ci_high:+.2f}]"
                sig = "–" if comp.p_holm is None else f"{comp.p_holm:.3g}" + (" *" if comp.significant else "")
                wtl = f"{comp.wins}/{comp.ties}/{comp.losses}"
            out.append([row.variant, task, f"{100 * score:.2f}" + (f" ±{100 * half:.2f}" if half is not None else ""),
                        diff, sig, wtl])
    return header, out


def cost_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    header = ["variant", "texts/s", "tokens/s", "latency batch 1", "latency at batch", "peak memory", "load time",
              "bytes/vector", "MB per 1M docs"]
    out = []
    for row in rows:
        s = row.speed()
        at = f" (×{s['batch']}, {s['tokens']} tok)" if s else ""
        memory = s.get("gpu_peak_mb") or s.get("rss_peak_mb")
        kind = "GPU" if s.get("gpu_peak_mb") else "RSS"
        out.append([row.variant, _num(s.get("texts_per_s")) + at, _num(s.get("tokens_per_s"), 0),
                    _num(s.get("latency_1_ms"), 1, " ms"), _num(s.get("latency_batch_ms"), 1, " ms"),
                    _num(memory, 0, f" MB {kind}") if memory else "–", _num(s.get("load_seconds"), 2, " s"),
                    str(row.bytes_per_vector or "–"),
                    _num(row.bytes_per_vector, 0) if row.bytes_per_vector else "–"])
    return header, out


def pareto(points: list[tuple[float, float]], higher_x_better: bool) -> list[int]:
    """Indices of the points no other point beats on both axes (y: higher is better)."""
    sign = 1 if higher_x_better else -1
    front = []
    for i, (x, y) in enumerate(points):
        beaten = any((sign * x2 >= sign * x and y2 >= y) and (sign * x2 > sign * x or y2 > y)
                     for j, (x2, y2) in enumerate(points) if j != i)
        if not beaten:
            front.append(i)
    return front


def _panel(ax, rows: list[Row], xs: list[float | None], higher_x_better: bool, xlabel: str) -> None:
    pts = [(x, 100 * r.mean_score, r.variant) for r, x in zip(rows, xs) if x and r.mean_score is not None]
    for x, y, label in pts:
        ax.plot(x, y, "o", color="tab:blue")
        short = label.split(SEP, 1)[-1] if SEP in label else label
        ax.annotate(short + (" (baseline)" if label == rows[0].variant else ""), (x, y), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    front = sorted((pts[i] for i in pareto([(x, y) for x, y, _ in pts], higher_x_better)), key=lambda p: p[0])
    if front:
        ax.plot([p[0] for p in front], [p[1] for p in front], "--", color="tab:red", label="Pareto front")
        ax.legend(fontsize=7)
    ax.set(xlabel=xlabel, ylabel="mean main score x 100 (quality tasks)")
    ax.grid(True, alpha=0.3)


def plot_png(rows: list[Row]) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), dpi=110)
    _panel(axes[0], rows, [r.speed().get("texts_per_s") for r in rows], True, "throughput (texts/s, perf task)")
    axes[0].set_title("quality vs throughput")
    _panel(axes[1], rows, [r.bytes_per_vector for r in rows], False, "bytes per vector")
    axes[1].set(xscale="log", title="quality vs bytes per vector")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]


def to_markdown(rows: list[Row], tasks: list[str], baseline: str) -> str:
    out = ["# Deployment choices, measured", "",
           f"Baseline: **{baseline}**. Δ: paired difference of the main score (x 100) over the same items, "
           "95% paired-bootstrap interval; p: paired permutation test, Holm-corrected over the comparisons of "
           "each task (* below 0.05); W/T/L: items where the variant scores higher / the same / lower.", "",
           "## Quality", ""]
    out += _md_table(*quality_table(rows, tasks))
    out += ["", "## Cost", "",
            "Speed and memory from each variant's perf task (same texts, same process order per variant); "
            "compressed-vector variants run the baseline's model, so their speed rows measure the same network "
            "again. MB per 1M docs: raw vectors only, no index overhead.", ""]
    out += _md_table(*cost_table(rows))
    return "\n".join(out) + "\n"


def write_deploy_report(lb: Leaderboard, perf: dict[str, dict], folder: Path,
                        stem: str = "deploy_report") -> dict[str, Path]:
    """``lb``: a leaderboard built with the deploy baseline (``baseline_of``)."""
    baseline = baseline_of(lb)
    rows = deploy_rows(lb, perf, baseline)
    tasks = [t.name for t in lb.tasks if t.name != "perf"]
    md, png = to_markdown(rows, tasks, baseline), plot_png(rows)
    folder = Path(folder)
    paths = {"md": folder / f"{stem}.md", "png": folder / f"{stem}.png", "html": folder / f"{stem}.html"}
    atomic_write_text(paths["md"], md + f"\n![quality vs throughput and vs bytes per vector]({stem}.png)\n")
    atomic_write_bytes(paths["png"], png)
    atomic_write_text(paths["html"], _html(rows, tasks, baseline, png))
    return paths


def _html(rows: list[Row], tasks: list[str], baseline: str, png: bytes) -> str:
    def table(header, body):
        return ("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
                + "</tbody></table>")

    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>deployment choices</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:.3em .6em}"
            "table{border-collapse:collapse}</style></head><body><h1>Deployment choices, measured</h1>"
            f"<p>Baseline: <b>{html.escape(baseline)}</b>. Δ: paired difference (x 100) with its 95% paired-bootstrap "
            "interval; p: paired permutation test, Holm-corrected per task.</p><h2>Quality</h2>"
            + table(*quality_table(rows, tasks)) + "<h2>Cost</h2>" + table(*cost_table(rows))
            + f'<p><img style="max-width:100%" src="data:image/png;base64,{base64.b64encode(png).decode()}"></p>'
            "</body></html>\n")
