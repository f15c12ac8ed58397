"""Where evalkit's own config and task files live: in the repository (``conf/``, ``tasks/`` at
the top level) or, for an installed wheel, inside the package (``evalkit/_conf``,
``evalkit/_tasks``: pyproject's package-data mapping copies them there at build time)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def _find(name: str) -> Path:
    for candidate in (PACKAGE_DIR / f"_{name}", PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"evalkit's {name}/ folder is missing (looked in {PACKAGE_DIR} and {PACKAGE_DIR.parent})")


def conf_dir() -> Path:
    """The Hydra config folder (config.yaml, model/, task/, encode/, …)."""
    return _find("conf")


def tasks_dir() -> Path:
    """Built-in task specs (``<name>.yaml``) and their data cards (``<name>.md``)."""
    return _find("tasks")
