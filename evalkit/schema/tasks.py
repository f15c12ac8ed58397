"""What to evaluate (``task:`` in the Hydra config) and where files go (``paths:``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from evalkit.fields import Strict, speed

class TaskConfig(Strict):
    """What to evaluate. A task kind with settings of its own (the perf benchmark: ``task.perf.lengths=[…]``)
    reads them from its section here: extra keys, each a mapping, validated by the task index against
    the kind's settings class (``evalkit.tasks.index``). Sections never enter the config hash or a
    variant's name: a kind puts its settings into its tasks' fingerprints."""

    model_config = ConfigDict(extra="allow")

    names: list[str] = Field(default_factory=list)  # built-in task, MTEB task, 'perf', or a user spec's name
    subsets: list[str] | None = None  # keep only these subsets (hf subsets / built-in subsets)
    limit: int | None = Field(None, ge=1)  # evaluate only the first N queries / pairs / test rows
    instruction: str | None = None  # override every task's query instruction
    spec: str | None = speed(None)  # path to a user task spec (YAML); its data is in the fingerprint
    # An mteb benchmark by name ('MTEB(cmn, v1)'): its tasks are added to `names`.
    benchmark: str | None = speed(None)
    # Tasks of a benchmark with no data here (offline, no mirror): error (say which) or skip them.
    missing: Literal["error", "skip"] = speed("error")
    @model_validator(mode="after")
    def _something_to_run(self):
        if not self.names and not self.benchmark:
            raise ValueError("give task.names (e.g. [zh_longdoc]) or task.benchmark (e.g. 'MTEB(cmn, v1)')")
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, dict):  # a kind's section is a mapping; anything else is a typo
                raise ValueError(f"unknown field {key!r}")
        return self

    def kind_settings(self) -> dict[str, dict]:
        """The task kinds' own sections (``task.perf``), as given."""
        return dict(self.model_extra or {})

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
