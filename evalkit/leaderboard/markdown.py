"""Leaderboard -> Markdown: ranking table (tasks as columns), means per type and language,
failure reasons as footnotes, provenance. A failed cell reads "FAILED [n]", never 0."""

from __future__ import annotations

from evalkit.leaderboard.schema import Cell, Leaderboard


def fmt_score(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def cell_text(cell: Cell, notes: list[str]) -> str:
    if cell.status == "ok":
        return fmt_score(cell.main_score) if cell.main_score is not None else "ok"
    notes.append(f"{cell.model} on {cell.task}: {cell.error}")
    return f"{cell.status.upper()} [{len(notes)}]"


def fmt_speed(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = ["| " + " | ".join(map(esc, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return out


def to_markdown(lb: Leaderboard) -> str:
    cells = {(c.model, c.task): c for c in lb.cells}
    notes: list[str] = []
    tasks = [t.name for t in lb.tasks]
    perf = any(s.speed.latency_1k_ms is not None for s in lb.summary)
    header = ["rank", "model", "mean"] + [f"{t.name} ({t.main_metric or '-'})" for t in lb.tasks] + ["tokens/s", "p50 batch ms"]
    header += ["1k-token latency ms (perf)"] if perf else []
    rows = []
    for s in lb.summary:
        if s.complete:
            mean = fmt_score(s.mean)
        else:
            mean = "incomplete" + (f" ({fmt_score(s.mean_available)} over ok tasks)" if s.mean_available is not None else "")
        rows.append(
            [str(s.rank or "-"), s.model, mean]
            + [cell_text(cells[(s.model, t)], notes) for t in tasks]
            + [fmt_speed(s.speed.tokens_per_s), fmt_speed(s.speed.batch_latency_p50_ms, 1)]
            + ([fmt_speed(s.speed.latency_1k_ms, 1)] if perf else [])
        )
    lines = ["# Leaderboard", "", "Scores are mteb main scores x 100. The mean covers models with every task ok.", ""]
    lines += _table(header, rows)
    if notes:
        lines += ["", "**No score:**", ""] + [f"{i}. {n}" for i, n in enumerate(notes, 1)]

    types = sorted({k for s in lb.summary for k in s.by_type})
    if types:
        lines += ["", "## Mean per task type", ""]
        lines += _table(["model"] + types, [[s.model] + [fmt_score(s.by_type.get(k)) for k in types] for s in lb.summary])
    langs = sorted({k for s in lb.summary for k in s.by_language})
    if langs:
        lines += ["", "## Mean per language", ""]
        lines += _table(["model"] + langs, [[s.model] + [fmt_score(s.by_language.get(k)) for k in langs] for s in lb.summary])

    lines += ["", "## Models", ""]
    lines += _table(
        ["model", "revision", "backend", "dimension", "max tokens", "devices"],
        [[m.id, m.revision or "-", m.backend or "-", str(m.dimension or "-"), str(m.max_tokens or "-"), ", ".join(m.devices) or "-"] for m in lb.models],
    )
    lines += ["", "## Tasks", ""]
    lines += _table(
        ["task", "type", "languages", "main metric", "data fingerprint", "limit"],
        [[t.name, t.type or "-", ", ".join(t.languages) or "-", t.main_metric or "-", ", ".join(t.fingerprints) or "-", str(t.limit or "all")] for t in lb.tasks],
    )
    p = lb.provenance
    versions = ", ".join(f"{k} {'/'.join(v)}" for k, v in p.result_versions.items())
    lines += [
        "",
        "## Provenance",
        "",
        f"- generated {p.generated_at} by evalkit {p.evalkit_version} from {', '.join(p.sources)}",
        f"- results dated {' to '.join(p.dates) or '-'}; versions: {versions or '-'}",
        f"- config hashes: {', '.join(p.config_hashes) or '-'}",
        f"- devices: {', '.join(p.devices) or '-'}",
        f"- schema version {lb.schema_version}",
    ]
    if lb.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in lb.warnings]
    return "\n".join(lines) + "\n"
