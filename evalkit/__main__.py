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
        save_redacted_config(cfg)
        records = runner.run(job, callbacks_from_config(cfg))
    except EvalkitError as exc:
        if _is_multirun():
            log.error("%s", exc)
            # One failing job of a sweep must not stop the others: Hydra goes on to the next.
            return None
        sys.exit(f"evalkit: {exc}")
    scores = [r.main_score for r in records if r.main_score is not None]
    return sum(scores) / len(scores) if scores else None  # for Hydra sweepers


def save_redacted_config(cfg: DictConfig) -> None:
    """Our copy of the composed config (Hydra's own is off: it would keep API keys)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from evalkit.results import atomic_write_text, redact

    try:
        out_dir = HydraConfig.get().runtime.output_dir
    except ValueError:
        return
    plain = redact(OmegaConf.to_container(cfg, resolve=True))
    atomic_write_text(f"{out_dir}/config.yaml", OmegaConf.to_yaml(OmegaConf.create(plain)))


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def cli() -> None:
    """Console-script and ``python -m evalkit`` entry: name checks, then Hydra."""
    from evalkit.choices import check_choices
    from evalkit.secrets import hide_cli_secrets
    from evalkit.tasks.spec import expand_task_spec_args

    sys.argv[1:] = hide_cli_secrets(sys.argv[1:])  # before Hydra can echo an API key anywhere
    try:
        sys.argv[1:] = expand_task_spec_args(sys.argv[1:])  # task=my_task.yaml -> task=user task.spec=…
        check_choices(sys.argv[1:])
    except EvalkitError as exc:
        sys.exit(f"evalkit: {exc}")
    main()


if __name__ == "__main__":
    cli()
