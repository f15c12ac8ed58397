"""``python -m evalkit model=… task=…`` — thin Hydra entry point; the work is in runner.run."""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from evalkit.config import job_from_config, callbacks_from_config
from evalkit.errors import EvalkitError

log = logging.getLogger("evalkit")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from evalkit import runner

    try:
        job = job_from_config(cfg)
        records = runner.run(job, callbacks_from_config(cfg))
    except EvalkitError as exc:
        log.error("%s", exc)
        if _is_multirun():
            # One failing job of a sweep must not stop the others: Hydra goes on to the next.
            return None
        sys.exit(f"evalkit: {exc}")
    scores = [r.main_score for r in records if r.main_score is not None]
    return sum(scores) / len(scores) if scores else None  # for Hydra sweepers


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


if __name__ == "__main__":
    main()
