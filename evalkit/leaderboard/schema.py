"""The leaderboard's JSON layout, versioned: pydantic models are the single source of truth.

``leaderboard.schema.json`` beside this file is generated from them
(``python -m evalkit.leaderboard --print-schema``) so that any JSON-Schema validator can
check a ``leaderboard.json`` without evalkit. A test keeps the two in step.

Version rules: the minor number grows when fields are added (old readers keep working),
the major number when a field changes meaning or disappears.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"
SCHEMA_FILE = Path(__file__).with_name("leaderboard.schema.json")

CellStatus = Literal["ok", "failed", "missing"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelEntry(_Strict):
    id: str = Field(description="Row key: the name, plus '@revision' when a revision is pinned.")
    name: str = Field(description="evalkit model name (config 'name'); the results folder name.")
    revision: str | None = Field(description="Pinned model revision (hub commit), null when unpinned.")
    backend: str | None = Field(description="sentence_transformers | hf | openai_compat.")
    model_id: str | None = Field(None, description="Hub id, local folder or served model name.")
    dimension: int | None = Field(description="Embedding dimension the scores were computed with.")
    max_tokens: int | None = Field(description="Longest input in tokens before truncation.")
    pooling: str | None = None
    dtype: str | None = None
    config_hashes: list[str] = Field(description="Config hash(es) of the results in this row.")
    devices: list[str] = Field(description="Devices the model ran on.")


class TaskEntry(_Strict):
    name: str
    type: str | None = Field(description="mteb task type: STS, Retrieval, BitextMining, Classification, ...")
    languages: list[str] = Field(description="ISO 639-3 codes of the evaluated subsets.")
    main_metric: str | None = Field(description="The metric behind every main score of this task.")
    fingerprints: list[str] = Field(description="Data fingerprint(s); more than one means the rows compare different data.")
    source: str | None = Field(None, description="mteb-mirror | builtin | user | hub | mteb.")
    limit: int | None = Field(None, description="Row cap used for quick runs (null: full data).")


class SubsetScore(_Strict):
    split: str
    subset: str
    languages: list[str]
    main_score: float | None


class Cell(_Strict):
    model: str = Field(description="ModelEntry.id")
    task: str = Field(description="TaskEntry.name")
    status: CellStatus = Field(description="ok: a complete result; failed: the run failed (see error); missing: no result and no failure record.")
    main_score: float | None = Field(description="mteb's TaskResult.get_score() of the result file; null unless status is ok.")
    error: str | None = Field(description="Why there is no score (failed / missing).")
    rank: int | None = Field(description="Rank among the ok cells of this task (1 = best, ties share a rank).")
    subsets: list[SubsetScore] = Field(default_factory=list, description="Main score per split and subset.")
    config_hash: str | None = None
    fingerprint: str | None = None
    date: str | None = None
    device: str | None = None
    evaluation_seconds: float | None = Field(None, description="Wall time of the task (evalkit.wall_seconds.task).")
    profile: dict[str, Any] | None = Field(None, description="The result file's evalkit.profile block (latency, throughput, memory), when profiled.")
    result_file: str | None = None
    failure_file: str | None = None
    stage: str | None = Field(None, description="Where a failed run stopped: config | prepare | model_load | task.")


class Speed(_Strict):
    tokens_per_s: float | None = Field(description="Real (unpadded) tokens over encode seconds, all profiled tasks.")
    texts_per_s: float | None
    batch_latency_p50_ms: float | None = Field(description="Median over tasks of the per-batch (or per-request) p50.")
    latency_1k_ms: float | None = Field(None, description="Batch-1 latency of a 1,024-token input, from the perf task (task=perf), when run.")


class ModelSummary(_Strict):
    model: str = Field(description="ModelEntry.id")
    tasks_ok: int
    tasks_failed: int
    tasks_missing: int
    complete: bool = Field(description="True when every task of the board has an ok score for this model.")
    mean: float | None = Field(description="Mean main score over all tasks; null unless complete (a partial mean would not compare).")
    mean_available: float | None = Field(description="Mean over the ok tasks only, for information.")
    by_type: dict[str, float | None] = Field(description="Mean per task type; null where a task of that type is not ok.")
    by_language: dict[str, float | None] = Field(description="Mean per language over the tasks covering it; null where one is not ok.")
    rank: int | None = Field(description="Rank by mean among complete models (1 = best).")
    speed: Speed


class Provenance(_Strict):
    generated_at: str
    evalkit_version: str = Field(description="evalkit that built this file.")
    sources: list[str] = Field(description="Folders read.")
    result_versions: dict[str, list[str]] = Field(description="Package versions found in the result files (evalkit, mteb, torch, ...).")
    config_hashes: list[str]
    devices: list[str]
    dates: list[str] = Field(description="Earliest and latest result date.")


class Leaderboard(_Strict):
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    kind: Literal["evalkit-leaderboard"] = "evalkit-leaderboard"
    provenance: Provenance
    models: list[ModelEntry] = Field(description="Rows, best rank first.")
    tasks: list[TaskEntry]
    cells: list[Cell] = Field(description="One per (model, task): the full grid, failed and missing pairs included.")
    summary: list[ModelSummary] = Field(description="Per model: means overall / per type / per language, rank, speed.")
    warnings: list[str] = Field(default_factory=list)


def json_schema() -> dict:
    schema = Leaderboard.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://evalkit.invalid/leaderboard/{SCHEMA_VERSION}/schema.json"
    schema["title"] = f"evalkit leaderboard, schema version {SCHEMA_VERSION}"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
