"""The perf figures as Markdown, laid out like the seed article's table: one column per model,
then latency and memory by input length (the task's log, the perf report, the seed report)."""

from __future__ import annotations


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
