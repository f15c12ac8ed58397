"""From a composed Hydra config to what the runner takes: the Job and its variant. Used by the
entry point and by the Hydra callbacks (sweep manifests, reports), which run in job processes."""

from __future__ import annotations

ENTRY_KEYS = ("callbacks", "verbose", "experiment", "leaderboard", "hydra")  # the entry point's keys, not the runner's


def job_from_config(cfg):
    """The validated Job of a composed Hydra config (entry-point keys and ``hydra`` left out)."""
    from omegaconf import OmegaConf

    from evalkit.schema import job_config

    keys = [k for k in cfg.keys() if k not in ENTRY_KEYS]
    raw = OmegaConf.to_container(OmegaConf.masked_copy(cfg, keys), resolve=True)
    return job_config(raw)


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


def is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False
