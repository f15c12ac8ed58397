"""Keep an API key given on the command line out of everything Hydra writes or prints.

Hydra echoes overrides in many places evalkit does not control: the sweep launcher's log
line (``#0 : model=… model.api_key=…``), ``multirun.yaml``, sweep folder names, and its
error messages ("To append to your config use +model.api_key=…"). So before Hydra sees
the command line, ``model.api_key=VALUE`` is swapped for
``model.api_key_env=EVALKIT_CLI_API_KEY`` and the value moves into that environment
variable of this process (inherited by local sweep jobs). The endpoint backend reads it
from there like any other key.
"""

from __future__ import annotations

import os
import re

CLI_KEY_ENV = "EVALKIT_CLI_API_KEY"
_KEY_OVERRIDE = re.compile(r"^(?P<prefix>\+{0,2})model\.api_key=(?P<value>.*)$", re.DOTALL)


def hide_cli_secrets(argv: list[str]) -> list[str]:
    """argv with ``model.api_key=…`` replaced by a reference to an environment variable."""
    out = []
    for arg in argv:
        match = _KEY_OVERRIDE.match(arg)
        if match is None:
            out.append(arg)
            continue
        value = match.group("value").strip().strip("'\"")
        if value and value.lower() not in ("null", "none"):
            os.environ[CLI_KEY_ENV] = value
            out.append(f"{match.group('prefix')}model.api_key_env={CLI_KEY_ENV}")
        else:
            out.append(arg)
    return out
