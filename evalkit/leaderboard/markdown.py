"""Leaderboard -> Markdown: ranking table (tasks as columns), means per type and language,
failure reasons as footnotes, provenance. A failed cell reads "FAILED [n]", never 0."""

from __future__ import annotations

from evalkit.leaderboard.compare import half_width, significance_marker
from evalkit.leaderboard.schema import Cell, Comparison, Leaderboard

LEGEND = ("Scores are mteb main scores x 100; ± is half the 95% bootstrap confidence interval (queries / items "
          "resampled within each subset). Against the baseline: * significantly better, † significantly worse, "
          "= no significant difference (paired permutation test, Holm-corrected p < 0.05).")


def fmt_score(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def fmt_p(p: float | None) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def cell_text(cell: Cell, notes: list[str], comp: Comparison | None = None) -> str:
    if cell.status == "ok":
        if cell.main_score is None:
            return "ok"
        hw = half_width(cell)
        return (fmt_score(cell.main_score) + (f" ±{100 * hw:.2f}" if hw is not None else "") + significance_marker(comp)
                + ZERO_SHOT_MARK.get(cell.zero_shot, ""))
    notes.append(f"{cell.model} on {cell.task}: {cell.error}")
    return f"{cell.status.upper()} [{len(notes)}]"


# not zero-shot / training data unknown (a zero-shot cell has no mark)
ZERO_SHOT_MARK = {False: " ‡", None: " ?"}  # † is taken: significantly worse


def zero_shot_lines(lb: Leaderboard) -> list[str]:
    """The legend of the marks, and which training datasets overlap which task."""
    flagged = [c for c in lb.cells if c.status == "ok" and c.zero_shot is not True]
    if not flagged:
        return []
    lines = ["", "‡ not zero-shot: the model's declared training data (mteb's model registry) includes the task's "
             "data; ? training data unknown (the model is not in mteb's registry or declares none)."
             + (" Means leave ‡ cells out (--zero-shot-only)." if lb.zero_shot_only else "")]
    lines += [f"- {c.model} on {c.task}: trained on {', '.join(c.training_overlap)}" for c in flagged if c.zero_shot is False]
    return lines


def baseline_comparisons(lb: Leaderboard) -> dict[tuple[str, str], Comparison]:
    return {(c.model_a, c.task): c for c in lb.comparisons if lb.baseline and c.model_b == lb.baseline}


def comparison_lines(lb: Leaderboard) -> list[str]:
    if not lb.comparisons:
        return []
    lines = ["", "## Paired comparisons", "",
             "Difference of main scores (a - b) x 100 with its 95% paired-bootstrap interval; two-sided paired "
             "permutation test over the items both models answered, Holm-corrected within each task; W/T/L: items "
             "where a scores higher / the same / lower.", ""]
    rows = []
    for c in lb.comparisons:
        diff = "-" if c.diff is None else f"{100 * c.diff:+.2f}"
        ci = "" if c.ci_low is None else f" [{100 * c.ci_low:+.2f}, {100 * c.ci_high:+.2f}]"
        wtl = "-" if c.wins is None else f"{c.wins}/{c.ties}/{c.losses}"
        rows.append([c.task, c.model_a, c.model_b, diff + ci, fmt_p(c.p_value), fmt_p(c.p_holm),
                     {True: "yes", False: "no", None: "-"}[c.significant], wtl, str(c.n or "-"), c.note or ""])
    return lines + _table(["task", "a", "b", "a - b", "p", "p (Holm)", "significant", "W/T/L", "n", "note"], rows)


def length_lines(lb: Leaderboard) -> list[str]:
    cells = [c for c in lb.cells if c.by_length]
    if not cells:
        return []
    lines = ["", "## Quality by document length", "",
             "Main score x 100 of the queries whose relevant document has this many tokens (the model's own "
             "tokenizer); in brackets the number of queries.", ""]
    for task in sorted({c.task for c in cells}):
        labels = [b.bucket for b in next(c for c in cells if c.task == task).by_length]
        rows = [[c.model] + [f"{fmt_score(b.score)} ({b.queries})" if b.queries else "-" for b in c.by_length]
                for c in cells if c.task == task]
        lines += [f"### {task}", ""] + _table(["model"] + labels, rows) + [""]
    lines += depth_lines(lb)
    effective = [c for c in lb.cells if c.effective_length is not None]
    if effective:
        lines += ["## Effective context length", "",
                  "The longest tested length whose score is at least 90% of the score at the shortest length.", ""]
        lines += _table(["model", "task", "effective length (tokens)"],
                        [[c.model, c.task, f"{c.effective_length:,}"] for c in effective])
    return lines


def depth_cell(b) -> str:
    """A depth bucket: score x 100 [95% CI] (queries; beyond the window / out of reach)."""
    if not b.queries:
        return "-"
    ci = "" if b.ci_low is None else f" [{100 * b.ci_low:.1f}, {100 * b.ci_high:.1f}]"
    out = f"{fmt_score(b.score)}{ci} ({b.queries}"
    if b.beyond_window:
        out += f"; {b.beyond_window} past window" + (f", {b.beyond_reach} unread" if b.beyond_reach else "")
    return out + ")"


def depth_lines(lb: Leaderboard) -> list[str]:
    cells = [c for c in lb.cells if c.by_depth]
    if not cells:
        return []
    lines = ["## Quality by evidence depth", "",
             "Main score x 100 [95% bootstrap interval] of the queries whose evidence lies this many tokens into "
             "its document (the model's own tokens); in brackets the queries, how many of them lie past the "
             "model's window (max_length) and how many this run never read (truncation; chunking reads all).", ""]
    for task in sorted({c.task for c in cells}):
        labels = [b.bucket for b in next(c for c in cells if c.task == task).by_depth]
        rows = [[c.model] + [depth_cell(b) for b in c.by_depth] for c in cells if c.task == task]
        lines += [f"### {task}", ""] + _table(["model"] + labels, rows) + [""]
    return lines


def fmt_speed(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = ["| " + " | ".join(map(esc, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return out


def to_markdown(lb: Leaderboard) -> str:
    cells = {(c.model, c.task): c for c in lb.cells}
    against = baseline_comparisons(lb)
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
            + [cell_text(cells[(s.model, t)], notes, against.get((s.model, t))) for t in tasks]
            + [fmt_speed(s.speed.tokens_per_s), fmt_speed(s.speed.batch_latency_p50_ms, 1)]
            + ([fmt_speed(s.speed.latency_1k_ms, 1)] if perf else [])
        )
    lines = ["# Leaderboard", "", LEGEND + " The mean covers models with every task ok."
             + (f" Baseline: {lb.baseline}." if lb.baseline else ""), ""]
    lines += _table(header, rows)
    if notes:
        lines += ["", "**No score:**", ""] + [f"{i}. {n}" for i, n in enumerate(notes, 1)]

    lines += zero_shot_lines(lb)
    lines += comparison_lines(lb)
    lines += length_lines(lb)
    lines += _detail_lines(lb)
    return "\n".join(lines) + "\n"


def _detail_lines(lb: Leaderboard) -> list[str]:
    """Means per type and language, the models, the tasks, provenance and warnings."""
    lines: list[str] = []
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
    return lines


def console_summary(lb: Leaderboard) -> str:
    """What a sweep prints at its end: the ranking (scores ± CI), failure reasons, comparisons."""
    return "\n".join([to_markdown(lb).split("\n## ")[0].rstrip(), *comparison_lines(lb)])
