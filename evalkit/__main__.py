"""``python -m evalkit model=… task=…`` — the thin Hydra entry point; the work is in runner.run."""

from __future__ import annotations

import logging
import signal
import sys

from evalkit.errors import EvalkitError
from evalkit.resources import conf_dir

log = logging.getLogger("evalkit")



def main(cfg) -> float | None:
    from omegaconf import OmegaConf

    from evalkit import console, runner
    from evalkit.hydra_job import hydra_variant, is_multirun, job_from_config

    console.setup(verbose=bool(cfg.get("verbose", False)))
    try:
        job = job_from_config(cfg)
        save_redacted_config(OmegaConf.to_container(cfg, resolve=True))
        records = runner.run(job, callbacks_from_config(cfg), variant=hydra_variant(job))
    except EvalkitError as exc:
        if is_multirun():
            log.error("%s", exc)
            return None  # one failing job of a sweep must not stop the others
        sys.exit(f"evalkit: {exc}")
    except KeyboardInterrupt:  # the runner said what was kept
        sys.exit(130)
    scores = [r.main_score for r in records if r.main_score is not None]
    return sum(scores) / len(scores) if scores else None  # for Hydra sweepers


def callbacks_from_config(cfg) -> list:
    from hydra.utils import instantiate

    from evalkit.errors import ConfigError

    out = []
    for name, spec in (cfg.get("callbacks") or {}).items():
        if spec is None:  # callbacks.<name>=null switches one off
            continue
        try:
            out.append(instantiate(spec))
        except Exception as exc:
            raise ConfigError(f"callback {name!r} could not be created: {exc}") from None
    return out


def save_redacted_config(raw: dict) -> None:
    """Our copy of the composed config (Hydra's own is off: it would keep API keys)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from evalkit.results import atomic_write_text, redact

    try:
        out_dir = HydraConfig.get().runtime.output_dir
    except ValueError:
        return
    plain = redact({k: v for k, v in raw.items() if k != "hydra"})
    atomic_write_text(f"{out_dir}/config.yaml", OmegaConf.to_yaml(OmegaConf.create(plain)))


def cli() -> None:
    """Console-script and ``python -m evalkit`` entry: name checks, then Hydra."""
    from evalkit.cli_args import prepare_argv

    if any(a in ("--version", "-V") for a in sys.argv[1:]):
        from evalkit import version_line

        print(version_line())
        return
    try:
        sys.argv[1:] = prepare_argv(sys.argv[1:])
    except EvalkitError as exc:
        sys.exit(f"evalkit: {exc}")
    import hydra

    from evalkit.resources import add_checkout_plugins

    add_checkout_plugins()
    signal.signal(signal.SIGINT, _first_sigint)
    try:
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(main)()
    except KeyboardInterrupt:  # Ctrl-C on a sweep: what was kept (or still runs) was said; no traceback
        sys.exit(130)


def _first_sigint(signum, frame) -> None:
    """First Ctrl-C: stop cleanly (results kept, cache committed); a second one exits at once."""
    signal.signal(signal.SIGINT, _second_sigint)
    raise KeyboardInterrupt


def _second_sigint(signum, frame) -> None:
    import os

    os._exit(130)


if __name__ == "__main__":
    cli()
