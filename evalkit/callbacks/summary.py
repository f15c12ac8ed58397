"""Prints the end-of-run score table."""

from __future__ import annotations

import sys

from evalkit.callbacks.base import Callback, JobInfo, TaskRecord


def format_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def subset_scores(record: TaskRecord) -> list[tuple[str, str, float]]:
    """(split, subset, main score) of a multi-subset result, for the rows under its mean."""
    if record.result is None:
        return []
    rows = [(split, sub, score) for split, sub, _, score in record.result.subset_scores() if score is not None]
    return rows if len(rows) > 1 else []


class SummaryTable(Callback):
    def __init__(self, stream=None):
        self.stream = stream

    def on_job_end(self, job: JobInfo, records: list[TaskRecord]) -> None:
        rows = []
        for r in records:
            score = f"{r.main_score:.4f}" if r.main_score is not None else "-"
            secs = r.result.evalkit.wall_seconds.get("task") if r.result is not None else None
            status = r.status if r.status != "failed" else f"FAILED: {r.error}"[:80]
            rows.append([r.model_name, r.task_name, r.main_metric or "-", score, f"{secs:.1f}" if secs else "-", status])
            for split, subset, value in subset_scores(r):
                rows.append(["", f"  {subset}" + (f" ({split})" if split != "test" else ""), "", f"{value:.4f}", "", ""])
        out = self.stream or sys.stdout
        print("\n" + format_table(rows, ["model", "task", "metric", "score", "seconds", "status"]), file=out)
        if records and records[0].path:
            print(f"results: {records[0].path.rsplit('/', 1)[0]}/", file=out)
