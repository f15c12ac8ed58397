"""What to evaluate (``task:`` in the Hydra config) and where files go (``paths:``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from evalkit.schema.fields import Strict, speed

DEFAULT_PERF_LENGTHS = [128, 512, 1024, 2048, 4096, 8192, 16384, 32768]


class PerfSettings(Strict):
    """``task.perf``: the latency/memory benchmark (task ``perf``)."""

    lengths: list[int] = Field(default_factory=lambda: list(DEFAULT_PERF_LENGTHS))
    batch_size: int = Field(8, ge=1)  # the second batch size of the length sweep (the first is 1)
    max_length: int | None = Field(None, ge=8)  # stop the sweep here even if the model allows more
    warmup: int = Field(2, ge=0)  # untimed passes per point
    repeats: int = Field(5, ge=1)  # timed passes per point (fewer past point_budget_s)
    short_repeats: int = Field(20, ge=1)  # timed passes of the short sentence
    short_tokens: int = Field(32, ge=8)  # short-sentence length in the model's tokens
    point_budget_s: float = Field(20.0, gt=0)  # stop repeating a point after this; skip longer lengths after a slower pass
    endpoint_chars_per_token: float | None = Field(None, gt=0)  # endpoints: None calibrates from usage counts

    @field_validator("lengths")
    @classmethod
    def _sorted_positive(cls, v: list[int]) -> list[int]:
        if not v or any(n < 8 for n in v):
            raise ValueError("lengths must be a non-empty list of token counts >= 8")
        return sorted(set(v))


class TaskConfig(Strict):
    names: list[str] = Field(default_factory=list)  # built-in task, MTEB task, 'perf', or a user spec's name
    subsets: list[str] | None = None  # keep only these subsets (hf subsets / built-in subsets)
    limit: int | None = Field(None, ge=1)  # evaluate only the first N queries / pairs / test rows
    instruction: str | None = None  # override every task's query instruction
    spec: str | None = speed(None)  # path to a user task spec (YAML); its data is in the fingerprint
    # An mteb benchmark by name ('MTEB(cmn, v1)'): its tasks are added to `names`.
    benchmark: str | None = speed(None)
    # Tasks of a benchmark with no data here (offline, no mirror): error (say which) or skip them.
    missing: Literal["error", "skip"] = speed("error")
    # The perf benchmark's settings are part of its own fingerprint, not of every task's hash.
    perf: PerfSettings = speed(default_factory=PerfSettings)

    @model_validator(mode="after")
    def _something_to_run(self):
        if not self.names and not self.benchmark:
            raise ValueError("give task.names (e.g. [zh_longdoc]) or task.benchmark (e.g. 'MTEB(cmn, v1)')")
        return self

    @field_validator("subsets", mode="before")
    @classmethod
    def _subset_names(cls, v):
        # Hydra reads task.subsets=[256,1024] as integers; subset names are strings.
        return [str(x) for x in v] if isinstance(v, list | tuple) else v


def default_raw_dir() -> Path:
    """Where pulled raw data lives unless ``paths.raw_data`` says otherwise:
    ``$EVALKIT_CACHE_DIR/raw``, else the platform's user cache folder (``~/.cache/evalkit/raw``
    on Linux, ``~/Library/Caches/evalkit/raw`` on macOS)."""
    if os.environ.get("EVALKIT_CACHE_DIR"):
        return Path(os.environ["EVALKIT_CACHE_DIR"]) / "raw"
    import platformdirs

    return Path(platformdirs.user_cache_dir("evalkit")) / "raw"


class PathsConfig(Strict):
    """Relative paths are relative to the directory you run in."""

    root: str = "outputs"
    results_dir: str | None = None  # None: <root>/results
    # raw source data of the built-in tasks and the MTEB mirrors; None: default_raw_dir(), filled
    # on first use from the upstreams in evalkit/data/sources.lock.json
    raw_data: str | None = None
    cache_dir: str | None = None  # None: <root>/cache (built task data, embedding cache)
    # where missing raw data may come from; None: the environment (EVALKIT_OFFLINE,
    # EVALKIT_DATA_MIRROR, EVALKIT_DEBIAN_MIRROR; see evalkit/data/pull.py)
    offline: bool | None = None  # true: never download, fail naming what is missing
    data_mirror: str | None = None  # base URL: upstream https://HOST/PATH is fetched as <base>/HOST/PATH
    debian_mirror: str | None = None  # base URL of a Debian mirror (the folder holding pool/)

    @classmethod
    def from_env(cls) -> PathsConfig:
        """What conf/paths/default.yaml gives, for callers without Hydra."""
        return cls(
            root=os.environ.get("EVALKIT_OUTPUT_DIR", "outputs"),
            raw_data=os.environ.get("EVALKIT_RAW_DATA"),
            cache_dir=os.environ.get("EVALKIT_CACHE_DIR"),
        )

    @property
    def results(self) -> Path:
        return Path(self.results_dir) if self.results_dir else Path(self.root) / "results"

    @property
    def cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.root) / "cache"

    @property
    def raw(self) -> Path:
        return Path(self.raw_data) if self.raw_data else default_raw_dir()
