"""Perf results -> one JSON, Markdown tables laid out like the seed article's, and a PNG plot.

Reads perf result files (``perf.json`` written by ``task=perf``) anywhere under the given
folders, so it merges the models of a multirun sweep, of several runs, or of several
machines (one column per model and device).
"""

from __future__ import annotations

from pathlib import Path

from evalkit.results import atomic_write_json, atomic_write_text


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


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:.1f} ms"


def fmt_mb(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1024:.2f} GB" if value >= 1024 else f"{value:.0f} MB"


def memory_of(point: dict | None, figures: dict) -> tuple[float | None, str]:
    """(MB, kind) of a point: peak GPU allocated on CUDA, peak process RSS on CPU."""
    if not point:
        return None, ""
    if figures.get("memory_kind") == "gpu":
        return point.get("gpu_peak_allocated_mb"), "GPU"
    if figures.get("memory_kind") == "rss":
        return point.get("rss_peak_mb"), "RSS"
    return None, "on server"


def _device_label(f: dict) -> str:
    m = f.get("machine") or {}
    if f.get("device") == "endpoint":
        return "endpoint (HTTP)"
    if m.get("gpu"):
        return f"{m['gpu']} (CUDA {m.get('cuda')}, driver {m.get('driver')})"
    return f"CPU {m.get('cpu', '?')} ({m.get('torch_threads')} threads)"


def markdown_tables(results: list[dict]) -> str:
    """The seed article's table (one column per model), then latency / memory by length."""
    names = [f"{f['model']}" + (f" @ {f['device']}" if len({r.get('device') for r in results}) > 1 else "") for f in results]
    rows = [
        ("加载时间 load time", [f"{f['load_seconds']:.2f} s" if f.get("load_seconds") is not None else "–" for f in results]),
        (
            "单句延迟 short sentence (batch 1, median)",
            [f"{fmt_ms(f['short']['latency_ms'])} ({f['short']['tokens']} tokens, n={f['short']['repeats']})" for f in results],
        ),
        ("长文本延迟 1k tokens (batch 1)", [_at_1k(f) for f in results]),
        ("峰值内存 peak memory at 1k tokens", [_mem_1k(f) for f in results]),
        ("最大支持长度 max length", [f"{f['max_tokens']} tokens" if f.get("max_tokens") else "–" for f in results]),
        ("输出维度 output dimension", [str(f.get("dim") or "–") for f in results]),
        ("device", [_device_label(f) for f in results]),
    ]
    out = ["| 指标 metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    out += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    out += ["", _length_table(results, names)]
    notes = sorted({f.get("token_count", "") for f in results})
    out += ["", "Token counts: " + "; ".join(f"{f['model']}: {f.get('token_count')}" for f in results) if notes else ""]
    return "\n".join(out).rstrip() + "\n"


def _at_1k(f: dict) -> str:
    p = f.get("at_1k")
    if not p or p.get("latency_ms") is None:
        return (p or {}).get("error") or (p or {}).get("skipped") or "–"
    note = f" (truncated to {f['max_tokens']})" if p.get("truncated") else ""
    return fmt_ms(p["latency_ms"]) + note


def _mem_1k(f: dict) -> str:
    value, kind = memory_of(f.get("at_1k"), f)
    if kind == "on server":
        return "– (on the server)"
    return f"{fmt_mb(value)} {kind}" if value is not None else "–"


def _length_table(results: list[dict], names: list[str]) -> str:
    """Latency and peak memory per input length: one column per (model, batch size)."""
    cols = []
    for f, name in zip(results, names):
        for b in sorted({p["batch"] for p in f["points"]}):
            cols.append((f, name, b))
    lengths = sorted({p["tokens"] for f in results for p in f["points"]})
    head = "| tokens | " + " | ".join(f"{name} ×{b}" for _, name, b in cols) + " |"
    lines = [head, "|---:|" + "---|" * len(cols)]
    for n in lengths:
        cells = []
        for f, _, b in cols:
            p = next((p for p in f["points"] if p["tokens"] == n and p["batch"] == b), None)
            if p is None:
                cells.append("")
            elif p.get("latency_ms") is None:
                cells.append(p.get("error") or "skipped")
            else:
                mem, kind = memory_of(p, f)
                cell = fmt_ms(p["latency_ms"]) + (f" · {fmt_mb(mem)} {kind}" if mem is not None else "")
                cells.append(cell + (" (truncated)" if p.get("truncated") else ""))
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "Latency (median) · peak memory, by input length in the model's tokens and batch size:\n\n" + "\n".join(lines)


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
