"""The ``model:`` section: one config class per backend, each defined in its backend's module
(``evalkit.encoders.backends.<name>.Config``) and collected here, torch-free. Fields marked
``speed(...)`` never change a vector (see ``evalkit.fields``).
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, ValidationError

from evalkit.encoders.backends import config_classes
from evalkit.encoders.config import ModelBase
from evalkit.errors import ConfigError
from evalkit.fields import format_validation_error

MODEL_CONFIGS: dict[str, type[ModelBase]] = config_classes()
ModelConfig = Annotated[Union[tuple(MODEL_CONFIGS.values())], Field(discriminator="backend")]


def validate_model_config(raw: dict[str, Any]) -> ModelBase:
    """Validate a model config dict against its backend's schema (unknown keys rejected)."""
    backend = raw.get("backend")
    if backend is None:
        raise ConfigError("model config has no 'backend' field")
    if backend not in MODEL_CONFIGS:
        raise ConfigError(f"unknown model backend {backend!r}; valid backends: {', '.join(sorted(MODEL_CONFIGS))}")
    try:
        return MODEL_CONFIGS[backend](**raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid model config {raw.get('name', '?')!r}:\n{format_validation_error(exc)}") from None
