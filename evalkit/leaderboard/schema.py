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

SCHEMA_VERSION = "2.2"  # 2.1: zero-shot flags; 2.2: Cell.by_depth
SCHEMA_FILE = Path(__file__).with_name("leaderboard.schema.json")

CellStatus = Literal["ok", "failed", "missing"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelEntry(_Strict):
    id: str = Field(description="Row key: the variant's display name, plus ' @revision' when a revision is pinned.")
    name: str = Field(description="evalkit model config name (config 'name').")
    variant: str = Field(description="Display name of the configuration: the name plus what differs from its config (e.g. 'minilm_l6 · max_length=32').")
    variant_id: str | None = Field(description="The results folder name of the variant.")
    revision: str | None = Field(description="Pinned model revision (hub commit), null when unpinned.")
    backend: str | None = Field(description="sentence_transformers | hf | openai_compat.")
    model_id: str | None = Field(None, description="Hub id, local folder or served model name.")
    dimension: int | None = Field(description="Embedding dimension the scores were computed with.")
    max_tokens: int | None = Field(description="Longest input in tokens before truncation.")
    pooling: str | None = None
    dtype: str | None = None
    parameters: int | None = Field(None, description="Model parameters (local backends).")
    weight_bytes: int | None = Field(None, description="Bytes of the weights as loaded (local backends).")
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


class LengthBucket(_Strict):
    bucket: str = Field(description="Relevant-document length in the model's tokens: ≤512, 512–2k, 2k–8k, 8k–32k, >32k.")
    queries: int
    score: float | None = Field(description="Weighted mean of the queries' main-metric values in this bucket (null when empty).")
    weight: float = Field(description="Share of the task score: the buckets' weighted scores sum to main_score.")


class DepthBucket(_Strict):
    bucket: str = Field(description="Tokens of the relevant document before the query's evidence, in the model's tokens: ≤512, 512–2k, 2k–8k, 8k–32k, >32k.")
    queries: int
    score: float | None = Field(description="Weighted mean of the queries' main-metric values in this bucket (null when empty).")
    weight: float = Field(description="Share of the task score (when every query has a position the weighted scores sum to main_score).")
    ci_low: float | None = Field(None, description="95% bootstrap interval of score (queries resampled within subsets).")
    ci_high: float | None = None
    beyond_window: int | None = Field(None, description="Queries whose evidence starts past the model's max_length (what truncation cuts).")
    beyond_reach: int | None = Field(None, description="Queries whose evidence this run never encoded (0 when chunking: the windows cover every token).")


class Cell(_Strict):
    model: str = Field(description="ModelEntry.id")
    task: str = Field(description="TaskEntry.name")
    status: CellStatus = Field(description="ok: a complete result; failed: the run failed (see error); missing: no result and no failure record.")
    main_score: float | None = Field(description="mteb's TaskResult.get_score() of the result file; null unless status is ok.")
    error: str | None = Field(description="Why there is no score (failed / missing).")
    rank: int | None = Field(description="Rank among the ok cells of this task (1 = best, ties share a rank).")
    ci_low: float | None = Field(None, description="Lower end of the 95% bootstrap confidence interval of main_score (items resampled within subsets).")
    ci_high: float | None = Field(None, description="Upper end of that interval.")
    n_items: int | None = Field(None, description="Per-item scores behind the interval (queries, pairs, sentences, test items).")
    ci_note: str | None = Field(None, description="Why there is no interval (e.g. no per-item scores: a result from an older evalkit or from mteb).")
    effective_length: int | None = Field(None, description="Long-context tasks (one subset per length): the longest tested length scoring >= 90% of the shortest length's score.")
    by_length: list[LengthBucket] | None = Field(None, description="Retrieval: the score by relevant-document length in the model's tokens (buckets weighted as in the task score).")
    by_depth: list[DepthBucket] | None = Field(None, description="Retrieval with evidence positions: the score by evidence depth in the model's tokens.")
    subsets: list[SubsetScore] = Field(default_factory=list, description="Main score per split and subset.")
    config_hash: str | None = None
    fingerprint: str | None = None
    date: str | None = None
    device: str | None = None
    evaluation_seconds: float | None = Field(None, description="Wall time of the task (evalkit.wall_seconds.task).")
    profile: dict[str, Any] | None = Field(None, description="The result file's evalkit.profile block (latency, throughput, memory), when profiled.")
    result_file: str | None = None
    failure_file: str | None = None
    stage: str | None = Field(None, description="Where a failed run stopped: config | prepare | model_load | probe | task.")
    zero_shot: bool | None = Field(None, description="False: the model's (or its reranker's) declared training data (mteb's ModelMeta) includes this task's data; null: training data unknown (not in mteb's registry or not declared); true: neither.")
    training_overlap: list[str] = Field(default_factory=list, description="The declared training datasets that are this task's data.")


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
    excluded: list[str] = Field(default_factory=list, description="Tasks left out of this model's means (--zero-shot-only: trained on their data).")
    speed: Speed


class Provenance(_Strict):
    generated_at: str
    evalkit_version: str = Field(description="evalkit that built this file.")
    sources: list[str] = Field(description="Folders read.")
    result_versions: dict[str, list[str]] = Field(description="Package versions found in the result files (evalkit, mteb, torch, ...).")
    config_hashes: list[str]
    devices: list[str]
    dates: list[str] = Field(description="Earliest and latest result date.")


class Comparison(_Strict):
    task: str
    model_a: str = Field(description="ModelEntry.id")
    model_b: str = Field(description="ModelEntry.id (the baseline when one is chosen)")
    diff: float | None = Field(description="main score of a minus that of b, over the paired items.")
    ci_low: float | None = Field(description="95% paired-bootstrap interval of diff: lower end.")
    ci_high: float | None = None
    p_value: float | None = Field(description="Two-sided paired permutation test (items' a/b swapped); null below 10 paired items.")
    p_holm: float | None = Field(description="p_value after Holm's correction over the comparisons of this task.")
    significant: bool | None = Field(description="p_holm < 0.05; null without a p-value.")
    wins: int | None = Field(description="Items where a scores higher than b.")
    ties: int | None = None
    losses: int | None = None
    n: int | None = Field(description="Paired items (only items both models answered).")
    note: str | None = Field(None, description="Why figures are missing, or a caveat.")


class Leaderboard(_Strict):
    schema_version: Literal["2.2"] = SCHEMA_VERSION
    kind: Literal["evalkit-leaderboard"] = "evalkit-leaderboard"
    provenance: Provenance
    models: list[ModelEntry] = Field(description="Rows, best rank first.")
    tasks: list[TaskEntry]
    cells: list[Cell] = Field(description="One per (model, task): the full grid, failed and missing pairs included.")
    summary: list[ModelSummary] = Field(description="Per model: means overall / per type / per language, rank, speed.")
    comparisons: list[Comparison] = Field(default_factory=list, description="Paired comparisons per task: every pair of models, or every model against the baseline.")
    baseline: str | None = Field(None, description="The model every other is compared with (--baseline), if chosen.")
    zero_shot_only: bool = Field(False, description="Means leave out cells that are not zero-shot (zero_shot false).")
    warnings: list[str] = Field(default_factory=list)


def json_schema() -> dict:
    schema = Leaderboard.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://evalkit.invalid/leaderboard/{SCHEMA_VERSION}/schema.json"
    schema["title"] = f"evalkit leaderboard, schema version {SCHEMA_VERSION}"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
