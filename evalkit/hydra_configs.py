"""Config nodes Hydra gets from evalkit's schema and task index, not from hand-kept YAML.

* ``model/_<backend>``: every field of a backend's config at its schema default (required
  fields ``???``). Model YAMLs inherit one (``defaults: [_hf]``) and hold only what differs,
  so ``model.dimension=256`` works without a ``+`` and no default is written twice.
* ``task/_schema``, ``encode/_schema``: the same for the task and encode sections.
* ``task/<name>`` for every built-in task spec in ``tasks/`` (``task=zh_passkey`` needs no
  YAML of its own).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

MISSING = "???"


def schema_node(cls: type[BaseModel], **given: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if name in given:
            out[name] = given[name]
        elif info.is_required():
            out[name] = MISSING
        else:
            default = info.get_default(call_default_factory=True)
            out[name] = default.model_dump(mode="json") if isinstance(default, BaseModel) else default
    return out


def register() -> None:
    from hydra.core.config_store import ConfigStore

    from evalkit.schema import MODEL_CONFIGS, EncodeConfig, TaskConfig
    from evalkit.tasks.index import TaskIndex

    cs = ConfigStore.instance()
    for backend, cls in MODEL_CONFIGS.items():
        cs.store(group="model", name=f"_{backend}", node=schema_node(cls))
    task_base = schema_node(TaskConfig)
    cs.store(group="task", name="_schema", node=task_base)
    cs.store(group="encode", name="_schema", node=schema_node(EncodeConfig))
    for name in TaskIndex().names("builtin"):
        cs.store(group="task", name=name, node={**task_base, "names": [name]})


def group_options(group: str) -> list[str]:
    """The options of a config group a user may choose (YAML files and registered nodes)."""
    from evalkit.resources import conf_dir
    from evalkit.tasks.index import TaskIndex

    names = {p.stem for p in (conf_dir() / group).glob("*.yaml")}
    if group == "task":
        names |= set(TaskIndex().names("builtin"))
    return sorted(n for n in names if not n.startswith("_"))
