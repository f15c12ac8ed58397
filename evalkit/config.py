"""Hydra config (DictConfig) -> validated runner.Job and callback objects."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from evalkit.callbacks.base import Callback
from evalkit.encoders.registry import validate_model_config
from evalkit.errors import ConfigError
from evalkit.runner import Job
from evalkit.tasks.registry import validate_task_config

TOP_LEVEL_KEYS = {"model", "task", "callbacks", "paths", "overwrite", "run"}


def job_from_config(cfg: DictConfig) -> Job:
    unknown = set(cfg.keys()) - TOP_LEVEL_KEYS
    if unknown:
        raise ConfigError(f"unknown top-level config field(s): {', '.join(sorted(unknown))}")
    model = validate_model_config(_plain(cfg.model))
    tasks = validate_task_config(_plain(cfg.task))
    paths = cfg.paths
    return Job(
        model=model,
        tasks=tasks,
        results_dir=Path(paths.results_dir),
        raw_data_dir=Path(paths.raw_data) if paths.get("raw_data") else None,
        cache_dir=Path(paths.cache_dir) if paths.get("cache_dir") else None,
        overwrite=bool(cfg.get("overwrite", False)),
        extra=_plain(cfg.run) if cfg.get("run") else {},
    )


def callbacks_from_config(cfg: DictConfig) -> list[Callback]:
    out = []
    for name, spec in (cfg.get("callbacks") or {}).items():
        if spec is None:  # callbacks.<name>=null switches one off
            continue
        try:
            out.append(instantiate(spec))
        except Exception as exc:
            raise ConfigError(f"callback {name!r} could not be created: {exc}") from None
    return out


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}
