"""Perf results -> one JSON, Markdown tables laid out like the seed article's, and a PNG plot.

Reads perf result files (``perf.json`` written by ``task=perf``) anywhere under the given
folders, so it merges the models of a multirun sweep, of several runs, or of several
machines (one column per model and device).
"""

from __future__ import annotations

from pathlib import Path

from evalkit.results import atomic_write_json, atomic_write_text
from evalkit.tasks.perf.table import markdown_tables, memory_of


def load_perf_results(dirs: list[Path]) -> list[dict]:
    """Figures of every perf result under ``dirs`` (results folders, sweep folders, or perf.json
    files), read through the result store; the newest per (model variant, device)."""
    from evalkit.leaderboard.scan import Scan
    from evalkit.results import ResultStore

    scan = Scan()
    for d in map(Path, dirs):
        if d.is_file():
            record = ResultStore(d.parent).read(d)
            if record is not None:
                scan.add_result(d, record)
        else:
            scan.add_folder(d)
    found: dict[tuple, dict] = {}
    for row, record in scan.perf.items():
        figures = record.task_result["scores"]["perf"][0] | {"model": row, "_date": record.evalkit.date,
                                                             "_file": str(scan.perf_files[row])}
        machine = figures.get("machine") or {}
        key = (row, figures.get("device"), machine.get("gpu") or machine.get("cpu"))
        if key not in found or figures["_date"] >= found[key]["_date"]:
            found[key] = figures
    return sorted(found.values(), key=lambda f: (f["model"], str(f.get("device"))))


def plot(results: list[dict], path: Path) -> Path:
    """Latency and peak memory vs input length, one line per model (solid: batch 1, dashed: batch N)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, f in enumerate(results):
        color = colors[i % len(colors)]
        for b in sorted({p["batch"] for p in f["points"]}):
            pts = [p for p in f["points"] if p["batch"] == b and p.get("latency_ms") is not None and not p.get("truncated")]
            if not pts:
                continue
            style = "-" if b == 1 else "--"
            xs = [p["tokens"] for p in pts]
            ax_t.plot(xs, [p["latency_ms"] for p in pts], style, marker="o", color=color, label=f"{f['model']} ×{b}")
            mem = [memory_of(p, f) for p in pts]
            if all(v is not None for v, _ in mem):
                ax_m.plot(xs, [v for v, _ in mem], style, marker="o", color=color, label=f"{f['model']} ×{b} ({mem[0][1]})")
    for ax, ylabel in ((ax_t, "latency per batch (ms, median)"), (ax_m, "peak memory (MB)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("input length (model tokens)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    ax_t.set_yscale("log")
    ax_m.set_title("GPU: peak allocated; CPU: peak process RSS", fontsize=9)
    ax_t.set_title("latency vs input length", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(results: list[dict], out_dir: Path, stem: str = "perf_report") -> dict[str, Path]:
    """``<stem>.json`` (all figures), ``<stem>.md`` (tables), ``<stem>.png`` (plot) in ``out_dir``."""
    out_dir = Path(out_dir)
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md", "png": out_dir / f"{stem}.png"}
    atomic_write_json(paths["json"], {"models": results})
    atomic_write_text(paths["md"], markdown_tables(results) + f"\n![latency and memory vs length]({stem}.png)\n")
    plot(results, paths["png"])
    return paths
