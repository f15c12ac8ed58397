"""``python -m evalkit model=… task=…`` — the thin Hydra entry point; the work is in runner.run."""

from __future__ import annotations

import logging
import signal
import sys

from evalkit.errors import EvalkitError
from evalkit.resources import conf_dir

log = logging.getLogger("evalkit")

ENTRY_KEYS = ("callbacks", "verbose", "experiment", "hydra")


def main(cfg) -> float | None:
    from omegaconf import OmegaConf

    from evalkit import console, runner

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


def job_from_config(cfg):
    """The validated Job of a composed Hydra config (entry-point keys and ``hydra`` left out)."""
    from omegaconf import OmegaConf

    from evalkit.schema import job_config

    keys = [k for k in cfg.keys() if k not in ENTRY_KEYS]
    raw = OmegaConf.to_container(OmegaConf.masked_copy(cfg, keys), resolve=True)
    return job_config(raw)


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


def hydra_variant(job):
    """The variant against the model config the user chose (also one from their own folder)."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from evalkit.variants import variant_of

    try:
        choice = HydraConfig.get().runtime.choices.get("model")
        preset = compose(config_name="config", overrides=[f"model={choice}"]).model
        return variant_of(job, OmegaConf.to_container(preset, resolve=False))
    except Exception:  # outside a Hydra app, or a choice compose cannot rebuild: the packaged preset
        return variant_of(job)


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


def is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


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

    signal.signal(signal.SIGINT, _first_sigint)
    hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(main)()


def _first_sigint(signum, frame) -> None:
    """First Ctrl-C: stop cleanly (results kept, cache committed); a second one exits at once."""
    signal.signal(signal.SIGINT, _second_sigint)
    raise KeyboardInterrupt


def _second_sigint(signum, frame) -> None:
    import os

    os._exit(130)


if __name__ == "__main__":
    cli()
