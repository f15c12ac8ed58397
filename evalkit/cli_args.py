"""The command line before Hydra sees it: secrets moved out of argv, ``task=my_task.yaml``
expanded, config-group choices and model fields checked with a "did you mean".

Hydra echoes overrides in places evalkit does not control (the sweep launcher's log line,
``multirun.yaml``, sweep folder names, its "Could not override" errors), so an API key given
as ``model.api_key=VALUE`` is swapped for ``model.api_key_env=EVALKIT_CLI_API_KEY`` and the
value moves into that environment variable of this process (inherited by local sweep
jobs). A misspelt model field (``model.apikey=sk-…``) is refused here, naming the field and
never its value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from evalkit.errors import ConfigError, unknown_name

CLI_KEY_ENV = "EVALKIT_CLI_API_KEY"
CHECKED_GROUPS = ("model", "task", "encode", "callbacks", "paths", "experiment")
_KEY_OVERRIDE = re.compile(r"^(?P<prefix>\+{0,2})model\.api_key=(?P<value>.*)$", re.DOTALL)
_MODEL_FIELD = re.compile(r"^[+~]{0,2}model\.(?P<field>[A-Za-z0-9_]+)(?:\.|=)")


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


def expand_task_spec_args(argv: list[str]) -> list[str]:
    """``task=my_task.yaml`` -> ``task=user task.spec=<absolute path>`` (conf/task/user.yaml)."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key == "task" and value.endswith((".yaml", ".yml")) and "," not in value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise ConfigError(f"task spec not found: {path}")
            out += ["task=user", f"task.spec={path.resolve()}"]
        else:
            out.append(arg)
    return out


def check_model_fields(argv: list[str]) -> None:
    """An unknown ``model.<field>`` override is an error naming the field (never the value)."""
    from evalkit.schema import MODEL_CONFIGS

    valid = sorted({f for cls in MODEL_CONFIGS.values() for f in cls.model_fields})
    for arg in argv:
        match = _MODEL_FIELD.match(arg)
        if match and match.group("field") not in valid:
            raise unknown_name("model field", match.group("field"), valid)


def check_choices(argv: list[str]) -> None:
    """Raise ConfigError for an unknown option of a config group on the command line."""
    from evalkit.hydra_configs import group_options

    if any(arg.lstrip("+").startswith("hydra.searchpath") or arg.startswith("--config-dir") for arg in argv):
        return  # options may live in the user's own config folders: Hydra resolves and lists them
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or key not in CHECKED_GROUPS:
            continue
        for choice in _sweep_values(value):
            if "/" in choice or choice.endswith((".yaml", ".yml")):
                continue  # a path: Hydra (or the user-task loader) resolves it
            options = group_options(key)
            if choice not in options:
                raise unknown_name(key.rstrip("s") if key == "callbacks" else key, choice, options)


def _sweep_values(value: str) -> list[str]:
    # "a,b" is a multirun sweep; choice(a,b) / glob(...) are Hydra sweep functions we leave to Hydra.
    if "(" in value:
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


def prepare_argv(argv: list[str]) -> list[str]:
    argv = hide_cli_secrets(argv)  # before Hydra can echo an API key anywhere
    argv = expand_task_spec_args(argv)
    check_model_fields(argv)
    check_choices(argv)
    return argv
