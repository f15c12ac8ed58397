"""Leaderboard -> one self-contained HTML page: inline CSS and JS, the plot as a data URI,
and a Content-Security-Policy that forbids every network fetch, so it opens offline.

Click a column header to sort (again to reverse); failed and missing cells always sort
last. ``page.html#sort=<column>`` or ``#sort=<column>:asc`` sorts on load (links, tests).
"""

from __future__ import annotations

import base64
import html

from evalkit.leaderboard.compare import half_width, significance_marker
from evalkit.leaderboard.html_sections import STYLE as SECTION_STYLE
from evalkit.leaderboard.html_sections import by_depth_section, by_length_section, significance_matrices
from evalkit.leaderboard.markdown import LEGEND, ZERO_SHOT_MARK, baseline_comparisons, fmt_score, fmt_speed
from evalkit.leaderboard.schema import Cell, Leaderboard

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", sans-serif; margin: 2em; color: #1d2327; }
h1 { margin-bottom: .2em; } h2 { margin-top: 1.8em; font-size: 1.15em; }
p.note { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #d0d4d9; padding: .3em .7em; text-align: right; white-space: nowrap; }
th { background: #f1f3f5; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable::after { content: " \\2195"; color: #999; }
th.sorted-asc::after { content: " \\25B2"; color: #333; }
th.sorted-desc::after { content: " \\25BC"; color: #333; }
td.text, th.text { text-align: left; }
td.best { font-weight: 700; background: #e7f5e9; }
td.failed, td.missing { color: #a61b1b; background: #fdecec; text-align: left; }
td.missing { color: #7a5b00; background: #fff6dc; }
td.incomplete { color: #777; }
ol.reasons li { margin: .2em 0; } code { font-size: 12px; }
img.plot { max-width: 760px; border: 1px solid #d0d4d9; }
"""

SCRIPT = """
(function () {
  function key(td) {
    var v = td.getAttribute('data-sort');
    if (v === null || v === '') return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortTable(table, col, asc) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null && y === null) return 0;
      if (x === null) return 1;   /* failed / missing / no value: always last */
      if (y === null) return -1;
      var c = x < y ? -1 : x > y ? 1 : 0;
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.classList.remove('sorted-asc', 'sorted-desc');
      if (i === col) th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
    });
    table.setAttribute('data-sorted-by', table.tHead.rows[0].cells[col].getAttribute('data-col'));
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (!th.classList.contains('sortable')) return;
      th.addEventListener('click', function () {
        var asc = th.classList.contains('sorted-desc') ? true : th.classList.contains('sorted-asc') ? false
                : th.getAttribute('data-default') === 'asc';
        sortTable(table, i, asc);
      });
    });
  });
  var m = /#sort=([^:&]+)(?::(asc|desc))?/.exec(decodeURIComponent(location.hash));
  var board = document.getElementById('leaderboard');
  if (m && board) {
    Array.prototype.forEach.call(board.tHead.rows[0].cells, function (th, i) {
      if (th.getAttribute('data-col') === m[1]) {
        sortTable(board, i, m[2] ? m[2] === 'asc' : th.getAttribute('data-default') === 'asc');
      }
    });
  }
  document.body.setAttribute('data-ready', '1');
})();
"""


def e(text) -> str:
    return html.escape(str(text), quote=True)


def _th(label: str, col: str, *, text: bool = False, default: str = "desc", title: str | None = None) -> str:
    cls = "sortable" + (" text" if text else "")
    tip = f' title="{e(title)}"' if title else ""
    return f'<th class="{cls}" data-col="{e(col)}" data-default="{default}"{tip}>{e(label)}</th>'



def _score_td(cell: Cell, best: float | None, reasons: list[str], comp=None) -> str:
    if cell.status == "ok":
        if cell.main_score is None:
            return '<td data-sort="">ok</td>'
        cls = ' class="best"' if best is not None and cell.main_score == best else ""
        tip = f"rank {cell.rank}; {cell.result_file}" if cell.rank else (cell.result_file or "")
        hw = half_width(cell)
        if hw is not None:
            tip = f"95% CI [{fmt_score(cell.ci_low)}, {fmt_score(cell.ci_high)}]; " + tip
        if cell.zero_shot is not True:  # ‡ trained on the task's data / ? training data unknown
            tip = (f"not zero-shot: trained on {', '.join(cell.training_overlap)}; " if cell.zero_shot is False
                   else "training data unknown; ") + tip
        text = fmt_score(cell.main_score) + (f" <small>±{100 * hw:.2f}</small>" if hw is not None else "")
        mark = significance_marker(comp) + ZERO_SHOT_MARK.get(cell.zero_shot, "")
        return f'<td{cls} data-sort="{cell.main_score!r}" title="{e(tip)}">{text}{e(mark)}</td>'
    reasons.append(f"{cell.model} on {cell.task}: {cell.error}")
    return (f'<td class="{cell.status}" data-sort="" title="{e(cell.error)}">{cell.status.upper()} '
            f'<sup>[{len(reasons)}]</sup></td>')


def _num_td(value: float | None, text: str) -> str:
    return f'<td data-sort="{"" if value is None else repr(value)}">{e(text)}</td>'


def _simple_table(header: list[str], rows: list[list[str]], text_cols: int = 1) -> str:
    head = "".join(f'<th class="{"text" if i < text_cols else ""}">{e(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"text" if i < text_cols else ""}">{e(v)}</td>' for i, v in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(lb: Leaderboard, plot_png: bytes | None = None, title: str = "evalkit leaderboard",
            length_png: bytes | None = None) -> str:
    reasons: list[str] = []
    parts = [
        f"<h1>{e(title)}</h1>",
        f'<p class="note">{e(LEGEND)} Click a column to sort. The mean covers models with every '
        "task ok; a failed or missing run is shown with its reason, never as a score.</p>",
        _board(lb, reasons),
    ]
    if reasons:
        parts.append('<h2>No score</h2><ol class="reasons">' + "".join(f"<li>{e(r)}</li>" for r in reasons) + "</ol>")
    if plot_png:
        data = base64.b64encode(plot_png).decode()
        parts.append(f'<h2>Scores with 95% intervals, and quality vs speed</h2><img class="plot" alt="scores with confidence '
                     f'intervals; mean score vs tokens per second" src="data:image/png;base64,{data}">')
    parts.append(significance_matrices(lb))
    parts.append(by_length_section(lb, length_png))
    parts.append(by_depth_section(lb))
    parts += _details(lb)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{e(title)}</title><style>{STYLE}{SECTION_STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def _board(lb: Leaderboard, reasons: list[str]) -> str:
    """The sortable table: one row per model, one score cell per task (reasons collects why a cell has none)."""
    cells = {(c.model, c.task): c for c in lb.cells}
    against = baseline_comparisons(lb)
    best = {t.name: max((c.main_score for c in lb.cells if c.task == t.name and c.status == "ok" and c.main_score is not None), default=None)
            for t in lb.tasks}

    head = [_th("rank", "rank", default="asc"), _th("model", "model", text=True, default="asc"), _th("mean", "mean")]
    head += [_th(t.name, t.name, title=f"{t.type or ''} · {t.main_metric or ''} · {', '.join(t.languages)}") for t in lb.tasks]
    head += [_th("tokens/s", "tokens_per_s"), _th("p50 batch ms", "latency", default="asc")]
    perf = any(s.speed.latency_1k_ms is not None for s in lb.summary)
    if perf:
        head.append(_th("1k-token latency ms", "latency_1k", default="asc", title="batch 1, 1,024 tokens (task=perf)"))
    rows = []
    for s in lb.summary:
        mean = (_num_td(s.mean, fmt_score(s.mean)) if s.complete
                else f'<td class="incomplete" data-sort="" title="incomplete: no mean over all tasks; in brackets the mean over ok tasks">'
                     f'{"(" + fmt_score(s.mean_available) + ")" if s.mean_available is not None else "incomplete"}</td>')
        tds = [_num_td(s.rank, str(s.rank or "-")), f'<td class="text" data-sort="{e(s.model)}">{e(s.model)}</td>', mean]
        tds += [_score_td(cells[(s.model, t.name)], best[t.name], reasons, against.get((s.model, t.name)))
                for t in lb.tasks]
        tds += [_num_td(s.speed.tokens_per_s, fmt_speed(s.speed.tokens_per_s)),
                _num_td(s.speed.batch_latency_p50_ms, fmt_speed(s.speed.batch_latency_p50_ms, 1))]
        if perf:
            tds.append(_num_td(s.speed.latency_1k_ms, fmt_speed(s.speed.latency_1k_ms, 1)))
        rows.append(f'<tr data-model="{e(s.model)}">' + "".join(tds) + "</tr>")
    return (f'<table id="leaderboard" class="sortable"><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _details(lb: Leaderboard) -> list[str]:
    """Means per type and language, the models, the tasks, provenance and warnings."""
    parts = []
    types = sorted({k for s in lb.summary for k in s.by_type})
    if types:
        parts.append("<h2>Mean per task type</h2>" + _simple_table(["model"] + types, [[s.model] + [fmt_score(s.by_type.get(k)) for k in types] for s in lb.summary]))
    langs = sorted({k for s in lb.summary for k in s.by_language})
    if langs:
        parts.append("<h2>Mean per language</h2>" + _simple_table(["model"] + langs, [[s.model] + [fmt_score(s.by_language.get(k)) for k in langs] for s in lb.summary]))
    parts.append("<h2>Models</h2>" + _simple_table(
        ["model", "revision", "backend", "model id", "dimension", "max tokens", "config hashes", "devices"],
        [[m.id, m.revision or "-", m.backend or "-", m.model_id or "-", m.dimension or "-", m.max_tokens or "-",
          ", ".join(m.config_hashes) or "-", ", ".join(m.devices) or "-"] for m in lb.models], text_cols=8))
    parts.append("<h2>Tasks</h2>" + _simple_table(
        ["task", "type", "languages", "main metric", "data fingerprint", "source", "limit"],
        [[t.name, t.type or "-", ", ".join(t.languages) or "-", t.main_metric or "-", ", ".join(t.fingerprints) or "-",
          t.source or "-", t.limit or "all"] for t in lb.tasks], text_cols=7))
    p = lb.provenance
    parts.append(
        "<h2>Provenance</h2><ul>"
        f"<li>generated {e(p.generated_at)} by evalkit {e(p.evalkit_version)} (schema {e(lb.schema_version)})</li>"
        f"<li>sources: {e(', '.join(p.sources))}</li>"
        f"<li>results dated {e(' to '.join(p.dates) or '-')}</li>"
        f"<li>versions: {e('; '.join(f'{k} {chr(47).join(v)}' for k, v in p.result_versions.items()) or '-')}</li>"
        f"<li>config hashes: <code>{e(', '.join(p.config_hashes) or '-')}</code></li>"
        f"<li>devices: {e(', '.join(p.devices) or '-')}</li></ul>"
    )
    if lb.warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{e(w)}</li>" for w in lb.warnings) + "</ul>")
    return parts
