"""The one mark for config fields that never change a vector or a score ("speed-only").

``speed(default, ...)`` is ``pydantic.Field`` with ``json_schema_extra={"speed_only": True}``.
The config hash (resume), the embedding cache's model identity and a variant's display name
all call :func:`scoring_dump`, so adding a field in one place is enough for all three.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SPEED_ONLY = "speed_only"


def speed(default: Any = ..., **kwargs: Any) -> Any:
    """A field that changes speed, memory or logging but never a vector or a score."""
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    extra[SPEED_ONLY] = True
    if "default_factory" in kwargs:
        return Field(json_schema_extra=extra, **kwargs)
    return Field(default, json_schema_extra=extra, **kwargs)


class Strict(BaseModel):
    """Base of every config model: unknown keys are an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


def is_speed_only(model_cls: type[BaseModel], name: str) -> bool:
    info = model_cls.model_fields.get(name)
    extra = info.json_schema_extra if info is not None else None
    return isinstance(extra, dict) and bool(extra.get(SPEED_ONLY))


def speed_only_fields(model_cls: type[BaseModel]) -> set[str]:
    return {name for name in model_cls.model_fields if is_speed_only(model_cls, name)}


def scoring_dump(cfg: BaseModel, *, drop_defaults: bool = False) -> dict[str, Any]:
    """The fields of ``cfg`` that can change a score (JSON-ready; secrets are speed-only and
    so never in here). ``drop_defaults`` leaves out fields at their default value, so a new
    field added later with a default does not change the hash of older configs."""
    cls = type(cfg)
    out = {}
    for name, value in cfg.model_dump(mode="json").items():
        if name not in cls.model_fields or is_speed_only(cls, name):
            continue  # extra keys: a task kind's own section (evalkit.schema.tasks.TaskConfig), in its fingerprint
        if drop_defaults and name in cls.model_fields:
            info = cls.model_fields[name]
            if not info.is_required() and value == _json(info.get_default(call_default_factory=True)):
                continue
        out[name] = value
    return out


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def stable_hash(payload: Any, n: int = 16) -> str:
    blob = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem, naming the field (``unknown field 'batchsize'``)."""
    lines = []
    for err in exc.errors():
        field = prefix + ".".join(str(p) for p in err["loc"]) if err["loc"] else (prefix.rstrip(".") or "(root)")
        if err["type"] == "extra_forbidden":
            lines.append(f"  unknown field {field!r}")
        else:
            lines.append(f"  {field}: {err['msg']}")
    return "\n".join(lines)
