"""``task=perf``: the seed article's cost rows — latency and memory vs input length — for any model.

A task kind of its own, registered in the task index like every kind with a module: it gives
the index ``KIND`` (its name, and its section of ``task:``: ``task.perf.lengths=[…]``),
``NAMES`` (the task names it offers), ``Settings`` (that section's schema) and
``load(name, settings, paths)``. Inside: the task (``task``), the measurements (``measure``,
on texts cut to exact lengths: ``texts``) and its tables (``table``); the merged report of many
runs is ``evalkit.reports.perf``.
"""

from __future__ import annotations

from evalkit.tasks.perf.settings import PerfSettings as Settings

KIND = "perf"
NAMES = ["perf"]


def load(name: str, settings: Settings, paths):
    from evalkit.data.raw import ensure_raw, fetch_settings
    from evalkit.tasks.perf.task import PerfTask

    # the statutes it cuts its texts from: verified, pulled on first use like every task's raw files
    return PerfTask(settings, ensure_raw(["laws"], paths.raw, fetch_settings(paths), what="task perf"))
