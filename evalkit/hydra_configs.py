"""Config files generated from evalkit's schema and task specs, never written by hand.

* ``conf/model/_<backend>.yaml``: every field of a backend's config (the ``Config`` of its module in
  ``evalkit/encoders/backends/``) at its schema default
  (required fields ``???``). Model YAMLs inherit one (``defaults: [_hf]``) and hold only what
  differs, so ``model.dimension=256`` works without a ``+`` and no default is written twice.
* ``conf/task/_schema.yaml``, ``conf/encode/_schema.yaml``: the same for the task and encode sections.
* ``conf/task/<name>.yaml`` for every built-in task spec in ``tasks/``.

They are plain files (not ConfigStore nodes) so that every way of composing — the CLI, Hydra's
compose API, a submitit job on another machine — sees the same configs. ``python -m
evalkit.hydra_configs`` regenerates them; a test fails when they are out of date.
"""

from __future__ import annotations

from pathlib import Path
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


GENERATED = "# GENERATED from {source} by `python -m evalkit.hydra_configs`: do not edit (a test checks it).\n"


def generated_files() -> dict[str, str]:
    """conf/-relative path -> content of every config file generated from the schema and index."""
    import yaml

    from evalkit.schema import MODEL_CONFIGS, EncodeConfig, RerankConfig, TaskConfig
    from evalkit.tasks.index import KINDS
    from evalkit.tasks.spec import builtin_task_names

    def dump(node: dict, source: str) -> str:
        return GENERATED.format(source=source) + yaml.safe_dump(node, sort_keys=False, allow_unicode=True)

    files = {f"model/_{backend}.yaml": dump(schema_node(cls), f"{cls.__module__.replace('.', '/')}.py (Config)")
             for backend, cls in MODEL_CONFIGS.items()}
    kinds = {kind: schema_node(module.Settings) for kind, module in KINDS.items()}  # task.perf.…
    files["task/_schema.yaml"] = dump(schema_node(TaskConfig) | kinds, "evalkit/schema/tasks.py (TaskConfig)")
    files["encode/_schema.yaml"] = dump(schema_node(EncodeConfig), "evalkit/schema/encode.py (EncodeConfig)")
    files["rerank/_schema.yaml"] = dump(schema_node(RerankConfig), "evalkit/rerank/config.py (RerankConfig)")
    for name in builtin_task_names():
        files[f"task/{name}.yaml"] = dump({"defaults": ["_schema"], "names": [name]}, f"tasks/{name}.yaml")
    return files


def write_generated(conf: Path | None = None) -> list[Path]:
    from evalkit.resources import conf_dir

    conf = conf or conf_dir()
    written = []
    for rel, text in generated_files().items():
        path = conf / rel
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def group_options(group: str) -> list[str]:
    """The options of a config group a user may choose (YAML files and registered nodes)."""
    from evalkit.resources import conf_dir

    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml") if not p.stem.startswith("_"))


if __name__ == "__main__":
    for written in write_generated():
        print(f"wrote {written}")
