"""Backend name -> module with a pydantic ``Config`` and ``build(cfg, hooks)``.

Modules are imported lazily so that e.g. the HTTP client needs no torch import.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel, ValidationError

from evalkit.encoders.base import NO_HOOKS, Encoder, Hooks
from evalkit.errors import ConfigError

BACKENDS = {
    "sentence_transformers": "evalkit.encoders.sentence_tf",
    "hf": "evalkit.encoders.hf",
    "openai_compat": "evalkit.encoders.openai_compat",
}


def backend_module(backend: str):
    if backend not in BACKENDS:
        raise ConfigError(f"unknown model backend {backend!r}; valid backends: {', '.join(sorted(BACKENDS))}")
    return importlib.import_module(BACKENDS[backend])


def validate_model_config(raw: dict[str, Any]) -> BaseModel:
    """Validate a model config dict against its backend's schema (unknown keys rejected)."""
    backend = raw.get("backend")
    if backend is None:
        raise ConfigError("model config has no 'backend' field")
    module = backend_module(backend)
    try:
        return module.Config(**raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid model config {raw.get('name', '?')!r}:\n{format_validation_error(exc)}") from None


def build_encoder(cfg: BaseModel, hooks: Hooks = NO_HOOKS) -> Encoder:
    return backend_module(cfg.backend).build(cfg, hooks)


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  unknown field {field!r}")
        else:
            lines.append(f"  {field}: {err['msg']}")
    return "\n".join(lines)
