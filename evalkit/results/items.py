"""Per-item (per-query, per-pair, per-sentence) scores of one task, from the same evaluation
that gave mteb's aggregate — what confidence intervals and paired tests are computed from.

Stored beside the result file as ``<Task>.items.json.gz`` (outside mteb's ``*.json`` glob):
gzipped JSON, one block per (split, subset), columns as lists. ``main`` names the column
whose mean is the subset's main score (kind ``mean``); for STS (kind ``spearman``) the
subset score is the Spearman correlation of ``predicted`` with ``gold``, and ``main`` names
a per-pair contribution column whose mean equals that correlation.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

ITEMS_SCHEMA = 1
ITEMS_SUFFIX = ".items.json.gz"


@dataclass
class SubsetItems:
    split: str
    subset: str
    ids: list[str]
    main: str  # column whose mean is the subset's main score
    columns: dict[str, list[float]]  # per-item values, same order as ids
    kind: Literal["mean", "spearman"] = "mean"
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. top-k doc ids, predictions, gold

    def main_values(self) -> np.ndarray:
        return np.asarray(self.columns[self.main], dtype=np.float64)

    def score(self) -> float:
        return float(self.main_values().mean())


@dataclass
class TaskItems:
    task: str
    main_metric: str
    subsets: list[SubsetItems]
    schema: int = ITEMS_SCHEMA

    def score(self) -> float:
        """Mean over subsets of the subset scores (mteb's TaskResult.get_score())."""
        return float(np.mean([s.score() for s in self.subsets]))

    def n_items(self) -> int:
        return sum(len(s.ids) for s in self.subsets)

    def to_bytes(self) -> bytes:
        text = json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))
        return gzip.compress(text.encode("utf-8"), mtime=0)  # mtime 0: same items, same bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskItems:
        obj = json.loads(gzip.decompress(data).decode("utf-8"))
        return cls(
            task=obj["task"],
            main_metric=obj["main_metric"],
            subsets=[SubsetItems(**s) for s in obj["subsets"]],
            schema=obj.get("schema", ITEMS_SCHEMA),
        )

    def stat_subsets(self):
        """The subsets as ``evalkit.stats.ItemScores`` (for CIs and paired tests)."""
        from evalkit.stats import ItemScores

        out = []
        for s in self.subsets:
            name = s.subset if s.split == "test" else f"{s.subset}/{s.split}"
            if s.kind == "spearman":
                out.append(ItemScores(ids=s.ids, values=np.asarray(s.columns["predicted"], dtype=np.float64),
                                      gold=np.asarray(s.columns["gold"], dtype=np.float64), kind="spearman",
                                      subset=name))
            else:
                out.append(ItemScores(ids=s.ids, values=s.main_values(), kind="mean", subset=name))
        return out


def items_path(result_path: Path) -> Path:
    result_path = Path(result_path)
    return result_path.with_name(result_path.stem + ITEMS_SUFFIX)


def read_items(path: Path) -> TaskItems | None:
    """The items of a result, or None when the file is missing or damaged."""
    try:
        return TaskItems.from_bytes(Path(path).read_bytes())
    except (OSError, ValueError, KeyError, TypeError, EOFError, gzip.BadGzipFile):
        return None
