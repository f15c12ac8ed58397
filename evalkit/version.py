"""Which evalkit is this: version, distribution and location, for ``evalkit --version``.

The distribution on PyPI is ``embedding-evalkit`` ("evalkit" there is an unrelated project);
the import package stays ``evalkit``. The version comes from the installed distribution's
metadata, but only when that distribution describes *this* code: a wheel installed in
site-packages while Python imports a source checkout must not lend the checkout its version.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

DISTRIBUTION = "embedding-evalkit"
# Used in a source checkout without an install; keep equal to pyproject's [project] version.
SOURCE_VERSION = "0.2.0"
PACKAGE_DIR = Path(__file__).resolve().parent


def _install_kind(dist: metadata.Distribution) -> str | None:
    """'wheel' or 'editable' when ``dist`` installed the code in PACKAGE_DIR, else None."""
    if dist.read_text("RECORD") is None:
        return None  # build metadata (*.egg-info left in a checkout by a build), not an install
    installed = Path(str(dist.locate_file("evalkit/__init__.py")))
    if installed.is_file() and installed.resolve() == PACKAGE_DIR / "__init__.py":
        return "wheel"
    # An editable install copies no code; PEP 610's direct_url.json names the source folder.
    try:
        direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    except json.JSONDecodeError:
        return None
    if direct_url.get("dir_info", {}).get("editable"):
        source = Path(unquote(urlparse(direct_url.get("url", "")).path))
        if source.resolve() == PACKAGE_DIR.parent:
            return "editable"
    return None


def _find() -> tuple[str, str | None]:
    # Every distribution of that name on sys.path: a checkout's own *.egg-info (found first
    # when Python runs from the checkout) is skipped for the install that really holds the code.
    for dist in metadata.distributions(name=DISTRIBUTION):
        kind = _install_kind(dist)
        if kind:
            return dist.version, kind
    return SOURCE_VERSION, None


__version__, INSTALL_KIND = _find()


def version_line() -> str:
    """E.g. ``evalkit 0.2.0 (distribution embedding-evalkit, import package evalkit, at …/evalkit)``."""
    if INSTALL_KIND == "wheel":
        origin = f"distribution {DISTRIBUTION}"
    elif INSTALL_KIND == "editable":
        origin = f"distribution {DISTRIBUTION}, editable install"
    else:
        origin = f"source checkout, distribution {DISTRIBUTION} not installed from here"
    return f"evalkit {__version__} ({origin}, import package evalkit, at {PACKAGE_DIR})"
