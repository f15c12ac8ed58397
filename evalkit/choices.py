"""Checks ``model=…`` / ``task=…`` choices before Hydra composes, to add a "did you mean".

Hydra already refuses an unknown option and lists the available ones; this check runs
first so the message also names the closest valid name, and a sweep fails before any job.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.errors import unknown_name

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
CHECKED_GROUPS = ("model", "task", "callbacks", "paths")


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def check_choices(argv: list[str], conf_dir: Path = CONF_DIR) -> None:
    """Raise ConfigError for an unknown option of a config group on the command line."""
    if any(arg.lstrip("+").startswith("hydra.searchpath") for arg in argv):
        return  # options may live in the user's own config folders: Hydra resolves and lists them
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or key not in CHECKED_GROUPS:
            continue
        for choice in _sweep_values(value):
            if "/" in choice or choice.endswith((".yaml", ".yml")):
                continue  # a path: Hydra (or the user-task loader) resolves it
            options = group_options(key, conf_dir)
            if choice not in options:
                raise unknown_name(key.rstrip("s") if key == "callbacks" else key, choice, options)


def _sweep_values(value: str) -> list[str]:
    # "a,b" is a multirun sweep; choice(a,b) / glob(...) are Hydra sweep functions we leave to Hydra.
    if "(" in value:
        return []
    return [v.strip() for v in value.split(",") if v.strip()]
