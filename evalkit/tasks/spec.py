"""A task spec: one YAML file that says what a task is (its data comes from a builder or a folder).

Built-in specs live in ``tasks/`` at the repo root; a user writes one for their own data::

    name: my_faq                  # results are filed under this name
    type: Retrieval               # Retrieval (BEIR folder) or BitextMining (pairs.jsonl)
    languages: [eng-Latn]         # ISO 639-3 + script, as mteb writes them
    data: ./my_faq                # folder with corpus.jsonl, queries.jsonl, qrels/test.tsv;
                                  # relative paths are relative to this YAML file
    instruction: Given a question, retrieve the FAQ answer   # optional, for instruction models

Unknown keys are rejected (a typo must not be silently ignored).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evalkit.errors import ConfigError
from evalkit.fields import format_validation_error

DEFAULT_MAIN_METRIC = {"Retrieval": "ndcg_at_10", "BitextMining": "f1"}
LANGUAGE = re.compile(r"^[a-z]{3}-[A-Z][a-z]{3}$|^[a-z0-9+#]+-Code$")


class SubsetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    builder: str | None = None  # evalkit.data.<builder> builds it from the raw-data folder
    data: str | None = None  # or: a folder (Retrieval) / pairs.jsonl file or folder (BitextMining)
    languages: list[str] | None = None  # defaults to the task's languages
    description: str = ""
    source: str = ""
    license: str = ""
    # mteb's names of the public datasets this subset is built from: a model whose declared
    # training data (mteb's ModelMeta) includes one is not zero-shot on the task
    mteb_datasets: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self):
        if (self.builder is None) == (self.data is None):
            raise ValueError("give exactly one of 'builder' or 'data'")
        return self


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    type: Literal["Retrieval", "BitextMining"]
    languages: list[str] = Field(min_length=1)
    description: str = ""
    main_metric: str | None = None  # default: ndcg_at_10 (Retrieval), f1 (BitextMining)
    instruction: str | None = None  # query instruction for instruction-following models
    why_type: str = ""  # why this mteb task type measures the task best
    source: str = ""
    license: str = "not specified"
    reference: str | None = None  # URL
    split: str = "test"  # qrels/<split>.tsv
    # A task's data: one 'builder' or 'data' here, or several named 'subsets' (scored separately).
    builder: str | None = None
    data: str | None = None
    subsets: dict[str, SubsetSpec] | None = None
    mteb_datasets: list[str] = Field(default_factory=list)  # as SubsetSpec's, for a task without subsets

    @model_validator(mode="after")
    def _check(self):
        if self.subsets:
            if self.builder or self.data:
                raise ValueError("with 'subsets', put 'builder'/'data' inside each subset")
        elif (self.builder is None) == (self.data is None):
            raise ValueError("give exactly one of 'builder' or 'data' (or 'subsets')")
        langs = list(self.languages) + [lang for s in (self.subsets or {}).values() for lang in (s.languages or [])]
        bad = [lang for lang in langs if not LANGUAGE.match(lang)]
        if bad:
            raise ValueError(f"languages {bad} are not ISO 639-3 + script codes like 'zho-Hans', 'eng-Latn', 'python-Code'")
        if self.main_metric is None:
            self.main_metric = DEFAULT_MAIN_METRIC[self.type]
        return self

    def subset_specs(self) -> dict[str, SubsetSpec]:
        """Named subsets; a task without 'subsets' has one called 'default' (mteb's name for it)."""
        if self.subsets:
            return dict(self.subsets)
        return {"default": SubsetSpec(builder=self.builder, data=self.data, source=self.source, license=self.license,
                                      mteb_datasets=self.mteb_datasets)}


def load_spec(path: Path) -> tuple[TaskSpec, Path]:
    """(spec, the folder its relative paths are relative to)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"task spec not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a task spec is a YAML mapping (name:, type:, languages:, data:, ...)")
    try:
        spec = TaskSpec(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid task spec:\n{format_validation_error(exc)}") from None
    return spec, path.resolve().parent


def builtin_task_names() -> list[str]:
    """The specs shipped in tasks/ (files starting with '_' are data for the index, not tasks)."""
    from evalkit.resources import tasks_dir

    return sorted(p.stem for p in tasks_dir().glob("*.yaml") if not p.name.startswith("_"))


def builtin_spec(name: str) -> tuple[TaskSpec, Path]:
    from evalkit.errors import unknown_name
    from evalkit.resources import tasks_dir

    if name not in builtin_task_names():
        raise unknown_name("task", name, builtin_task_names())
    return load_spec(tasks_dir() / f"{name}.yaml")
