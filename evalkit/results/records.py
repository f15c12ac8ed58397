"""The typed result record and failure record, as they are written to disk.

A result file is exactly the JSON mteb's ``TaskResult.to_disk`` writes (mteb's loaders read
it; they ignore extra keys) plus one key, ``evalkit``: an :class:`EvalkitBlock` that says
which model variant, task data, versions and device a score comes from, and how it was
computed. A failure record says why a (model, task) pair has no result.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RECORD_SCHEMA = 2
NO_REVISION = "no_revision_available"  # mteb's folder name for a model without a revision


class _Record(BaseModel):
    # Records are read back from files that later versions may extend: keep unknown keys.
    model_config = ConfigDict(extra="allow")


class ModelBlock(_Record):
    name: str  # the config's name (minilm_l6)
    variant: str  # display name of this configuration (minilm_l6 · max_length=32)
    variant_id: str  # its folder name under results/ (minilm_l6+max_length=32)
    revision: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)  # redacted model config, dtype resolved
    meta: dict[str, Any] = Field(default_factory=dict)  # EncoderMeta: dim, max_tokens, device, size…


class TaskBlock(_Record):
    name: str
    type: str | None = None  # mteb task type; "Performance" for the perf benchmark
    languages: list[str] = Field(default_factory=list)
    main_metric: str | None = None
    fingerprint: str | None = None  # hash of the data the score comes from
    source: str | None = None  # builtin | user | mteb-mirror | hub
    instruction: str | None = None
    skipped_rows: dict[str, int] = Field(default_factory=dict)
    limit: int | None = None
    subsets: list[str] | None = None


class EvalkitBlock(_Record):
    schema_version: int = RECORD_SCHEMA
    model: ModelBlock
    task: TaskBlock
    main_score: float | None = None
    config_hash: str
    encode_config: dict[str, Any] = Field(default_factory=dict)  # settings that can change a vector
    versions: dict[str, str | None] = Field(default_factory=dict)
    device: str | None = None
    date: str
    wall_seconds: dict[str, float | None] = Field(default_factory=dict)
    profile: dict[str, Any] | None = None  # the profiler callback's figures
    encode: dict[str, Any] | None = None  # cache hits, chunked / truncated texts, OOM splits…
    computed: dict[str, Any] | None = None  # how: workers, shards, devices (not in the hash)
    items_file: str | None = None  # per-query scores beside the result file (results.items)
    extra: dict[str, Any] = Field(default_factory=dict)  # task-specific: by_length, doc lengths…
    # the known-answer probe (evalkit.encoders.probe): status passed | skipped | not_run | off | none,
    # what it was checked on, the scores got and expected, the largest difference
    probe: dict[str, Any] | None = None


class ResultFile(BaseModel):
    """mteb's TaskResult JSON (``task_result``) + the evalkit block."""

    task_result: dict[str, Any]
    evalkit: EvalkitBlock

    @property
    def task_name(self) -> str:
        return self.task_result["task_name"]

    def to_json(self) -> dict[str, Any]:
        return {**self.task_result, "evalkit": self.evalkit.model_dump(mode="json")}

    @classmethod
    def from_json(cls, data: Any) -> ResultFile | None:
        """None for anything that is not a complete evalkit result (foreign or damaged files)."""
        if not isinstance(data, dict) or not isinstance(data.get("evalkit"), dict) or "scores" not in data:
            return None
        try:
            block = EvalkitBlock.model_validate(data["evalkit"])
        except ValueError:
            return None
        return cls(task_result={k: v for k, v in data.items() if k != "evalkit"}, evalkit=block)

    def subset_scores(self) -> list[tuple[str, str, list[str], float | None]]:
        """(split, subset, languages, main score) per entry of mteb's ``scores``."""
        out = []
        for split, entries in (self.task_result.get("scores") or {}).items():
            for e in entries or []:
                score = e.get("main_score") if isinstance(e, dict) else None
                out.append((split, str(e.get("hf_subset", "default")), list(e.get("languages") or []),
                            float(score) if score is not None else None))
        return out

    def mteb_score(self) -> float | None:
        """Mean of the subsets' main scores: what mteb's ``TaskResult.get_score()`` gives."""
        values = [s for *_, s in self.subset_scores() if s is not None]
        return sum(values) / len(values) if values else None

    def covers(self, expected: dict[str, list[str]] | None) -> bool:
        """Every split and subset the task evaluates has a main score in the file."""
        if expected is None:
            return True
        have = {(sp, sub) for sp, sub, _, score in self.subset_scores() if score is not None}
        return all((split, sub) in have for split, subs in expected.items() for sub in subs)


class FailureRecord(_Record):
    evalkit_failure: Literal[1] = 1
    status: Literal["failed"] = "failed"
    stage: str  # config | prepare | model_load | probe | task
    error: str
    traceback: str | None = None
    model: ModelBlock
    task: TaskBlock
    config_hash: str | None = None
    versions: dict[str, str | None] = Field(default_factory=dict)
    date: str
