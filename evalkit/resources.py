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


def add_checkout_plugins() -> None:
    """Let Hydra find ``hydra_plugins/evalkit_slurm`` (``hydra/launcher=slurm``) in a checkout.

    A wheel installs it beside the other Hydra plugins. An editable install maps it through
    setuptools' import hook, which imports it fine but which Hydra's plugin scan (``pkgutil``)
    cannot list: the checkout goes at the end of ``sys.path``, as when running from it."""
    import sys

    root = PACKAGE_DIR.parent
    if (root / "hydra_plugins" / "evalkit_slurm").is_dir() and str(root) not in sys.path:
        sys.path.append(str(root))
