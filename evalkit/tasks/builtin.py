"""Built-in tasks (zh_longdoc, mixed_lang, code_search) and user tasks from YAML specs.

Filled in by the data builders (issue 4). Contract used by ``evalkit.tasks.registry``:
``task_names() -> list[str]`` and ``load_task(name, cfg, raw_dir, cache_dir) -> PreparedTask``.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.tasks.prepared import PreparedTask


def task_names() -> list[str]:
    return []


def load_task(name: str, cfg, raw_dir: Path | None, cache_dir: Path | None) -> PreparedTask:
    raise KeyError(name)
