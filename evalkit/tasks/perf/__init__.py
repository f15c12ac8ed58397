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
    from evalkit.tasks.perf.task import PerfTask

    return PerfTask(settings, paths.raw)
