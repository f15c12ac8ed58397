"""One validated config for a job: ``model | task | encode | rerank | paths`` (+ ``overwrite``).

Torch-free and Hydra-free: ``job_config(dict)`` validates a plain dict (what Hydra composes,
or what a program writes by hand) and :class:`Job` is what ``evalkit.runner.run`` takes.
Speed-only fields are marked once (``evalkit.fields.speed``); the config hash, the
cache identity and the variant name all derive from that mark.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalkit.encoders.base import TaskTexts
from evalkit.errors import ConfigError
from evalkit.schema.encode import EncodeConfig
from evalkit.fields import format_validation_error, scoring_dump, stable_hash
from evalkit.rerank.config import RerankConfig
from evalkit.schema.models import MODEL_CONFIGS, ModelConfig, validate_model_config
from evalkit.schema.tasks import PathsConfig, TaskConfig

__all__ = [
    "EncodeConfig", "Job", "MODEL_CONFIGS", "ModelConfig", "PathsConfig", "RerankConfig", "TaskConfig",
    "TOP_LEVEL_KEYS", "job_config", "validate_model_config",
]

# Keys of conf/config.yaml; `callbacks`, `verbose` and `leaderboard` are the entry point's, not the runner's.
TOP_LEVEL_KEYS = {"model", "task", "encode", "rerank", "paths", "overwrite", "callbacks", "verbose", "experiment",
                  "leaderboard"}


class Job(BaseModel):
    """Everything one run needs: the model, its tasks, how to encode, where files go."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    model: ModelConfig
    task: TaskConfig
    encode: EncodeConfig = Field(default_factory=EncodeConfig)
    rerank: RerankConfig | None = None  # a second stage reordering retrieval's top_k (rerank=<name>)
    paths: PathsConfig = Field(default_factory=PathsConfig.from_env)
    overwrite: bool = False  # recompute even when a complete result exists

    def scoring_config(self) -> dict[str, Any]:
        """What can change a score: model, task settings, encode settings (defaults left out)."""
        out = {
            "model": scoring_dump(self.model),
            "task": scoring_dump(self.task, drop_defaults=True) | {"names": None},
            "encode": self.encode.scoring(),
        }
        if self.rerank is not None:  # absent without a reranker: older hashes stay as they were
            out["rerank"] = scoring_dump(self.rerank)
        return out

    def texts_of(self, task) -> TaskTexts:
        """Which texts ``task`` sends the encoder under this job: its data and every setting that
        chooses or cuts them (task limit, subsets, instruction; long_docs, chunk windows)."""
        scoring = self.scoring_config()
        return TaskTexts(task.name, task.fingerprint, {"task": scoring["task"], "encode": scoring["encode"]})

    def config_hash(self) -> str:
        """Hash of everything that can change a score (task names aside: one file per task)."""
        payload = self.scoring_config()
        payload["task"].pop("names")
        return "sha256:" + stable_hash(payload)


def _section(raw: dict, key: str, cls: type[BaseModel]) -> BaseModel:
    try:
        return cls(**(raw.get(key) or {}))
    except ValidationError as exc:
        raise ConfigError(f"invalid {key} config:\n{format_validation_error(exc)}") from None


def job_config(raw: dict[str, Any]) -> Job:
    """A plain config dict (model, task, encode, paths, overwrite) -> validated :class:`Job`."""
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        hint = " (the 'run:' block is now 'encode:', e.g. encode.long_docs=chunk)" if "run" in unknown else ""
        raise ConfigError(
            f"unknown top-level config field(s): {', '.join(sorted(unknown))}{hint}; "
            f"valid: {', '.join(sorted(TOP_LEVEL_KEYS))}"
        )
    return Job(
        model=validate_model_config(raw.get("model") or {}),
        task=_section(raw, "task", TaskConfig),
        encode=_section(raw, "encode", EncodeConfig),
        rerank=_section(raw, "rerank", RerankConfig) if raw.get("rerank") else None,
        paths=_section(raw, "paths", PathsConfig),
        overwrite=bool(raw.get("overwrite", False)),
    )
