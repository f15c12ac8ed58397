"""The leaderboard page's comparison sections: a model x model significance matrix per task,
and quality by document length (table + the plot, embedded)."""

from __future__ import annotations

import base64
import html

from evalkit.leaderboard.markdown import depth_cell, fmt_p, fmt_score
from evalkit.leaderboard.schema import Leaderboard

STYLE = """
table.matrix td { text-align: center; min-width: 5em; }
td.better { background: #dff3e3; font-weight: 600; } td.worse { background: #fbe3e3; font-weight: 600; }
td.same { color: #666; } td.na { color: #aaa; }
"""


def e(text) -> str:
    return html.escape(str(text), quote=True)


def significance_matrices(lb: Leaderboard) -> str:
    """Per task: row model a vs column model b, the difference a - b (x 100); green / red when
    significant (Holm-corrected paired permutation test), grey when not."""
    if not lb.comparisons:
        return ""
    rows_order = [s.model for s in lb.summary]
    parts = ["<h2>Significance between models</h2>",
             '<p class="note">Each cell: row minus column, main score x 100, over the items both answered. '
             "Green / red: significantly better / worse (paired permutation test, Holm-corrected p &lt; 0.05); "
             "grey: not significant. Hover for the interval, p-values and win/tie/loss counts.</p>"]
    for task in sorted({c.task for c in lb.comparisons}):
        comps = {(c.model_a, c.model_b): c for c in lb.comparisons if c.task == task}
        comps |= {(b, a): c for (a, b), c in list(comps.items())}
        models = [m for m in rows_order if any(m in k for k in comps)]
        cols = [lb.baseline] if lb.baseline else models
        head = "".join(f"<th>{e(m)}</th>" for m in cols)
        body = []
        for a in models:
            tds = []
            for b in cols:
                c = comps.get((a, b))
                if a == b or c is None:
                    tds.append('<td class="na">·</td>')
                    continue
                sign = 1 if c.model_a == a else -1
                if c.diff is None:
                    tds.append(f'<td class="na" title="{e(c.note or "")}">n/a</td>')
                    continue
                diff = sign * c.diff
                cls = "same" if not c.significant else ("better" if diff > 0 else "worse")
                lo, hi = sorted((sign * (c.ci_low or 0), sign * (c.ci_high or 0)))
                tip = (f"{a} - {b}: {100 * diff:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]; p {fmt_p(c.p_value)}, "
                       f"Holm {fmt_p(c.p_holm)}; n {c.n}; W/T/L {c.wins}/{c.ties}/{c.losses}"
                       if sign == 1 else f"{a} - {b}: {100 * diff:+.2f}; p {fmt_p(c.p_value)}, Holm {fmt_p(c.p_holm)}")
                tds.append(f'<td class="{cls}" title="{e(tip)}">{100 * diff:+.2f}</td>')
            body.append(f'<tr><th class="text">{e(a)}</th>{"".join(tds)}</tr>')
        parts.append(f'<h3>{e(task)}</h3><table class="matrix"><thead><tr><th></th>{head}</tr></thead>'
                     f'<tbody>{"".join(body)}</tbody></table>')
    return "".join(parts)


def by_length_section(lb: Leaderboard, plot_png: bytes | None) -> str:
    cells = [c for c in lb.cells if c.by_length]
    if not cells:
        return ""
    parts = ["<h2>Quality by document length</h2>",
             '<p class="note">Main score x 100 by the length of the relevant document in the model\'s own tokens '
             "(queries in brackets).</p>"]
    if plot_png:
        data = base64.b64encode(plot_png).decode()
        parts.append(f'<img class="plot" alt="score by document length" src="data:image/png;base64,{data}">')
    for task in sorted({c.task for c in cells}):
        labels = [b.bucket for b in next(c for c in cells if c.task == task).by_length]
        head = "".join(f"<th>{e(x)}</th>" for x in ["model", *labels])
        body = "".join(
            f'<tr><td class="text">{e(c.model)}</td>'
            + "".join(f"<td>{fmt_score(b.score)} ({b.queries})</td>" if b.queries else "<td>-</td>" for b in c.by_length)
            + "</tr>" for c in cells if c.task == task)
        parts.append(f"<h3>{e(task)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "".join(parts)


def by_depth_section(lb: Leaderboard) -> str:
    """The depth tables (the curves are in the by-length plot above)."""
    cells = [c for c in lb.cells if c.by_depth]
    if not cells:
        return ""
    parts = ["<h2>Quality by evidence depth</h2>",
             '<p class="note">Main score x 100 [95% bootstrap interval] by how many tokens of the relevant document '
             "lie before the query's evidence (the model's own tokens); in brackets the queries, how many lie past "
             "the model's window and how many this run never read.</p>"]
    for task in sorted({c.task for c in cells}):
        labels = [b.bucket for b in next(c for c in cells if c.task == task).by_depth]
        head = "".join(f"<th>{e(x)}</th>" for x in ["model", *labels])
        body = "".join(f'<tr><td class="text">{e(c.model)}</td>' + "".join(f"<td>{e(depth_cell(b))}</td>" for b in c.by_depth)
                       + "</tr>" for c in cells if c.task == task)
        parts.append(f"<h3>{e(task)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "".join(parts)
