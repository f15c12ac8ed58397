"""The model backends, one module each — the registry is this package's modules.

A backend module exports:

* ``Config``: its ``model:`` schema, a :class:`~evalkit.encoders.config.ModelBase` whose
  ``backend`` field is a one-value ``Literal`` (the name users write, ``backend: hf``);
* ``build(cfg, hooks, batching) -> Encoder``: the loaded model (heavy imports inside, so
  that validating a config imports no model library);
* ``IN_WORKERS``: whether ``encode.workers`` / ``encode.devices`` may run it in worker
  processes (evalkit.encoders.parallel); an endpoint client parallelises by itself;
* optionally ``load_view(cfg)``: the tokenizer alone, for document lengths when every
  vector is cached and the model never loads.

Adding a backend is adding a module here (then ``python -m evalkit.hydra_configs`` writes
its ``conf/model/_<backend>.yaml``).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

from evalkit.errors import ConfigError


@cache
def modules() -> dict[str, ModuleType]:
    """backend name -> its module, for every module of this package."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.Config.model_fields["backend"].default] = module
    return found


def config_classes() -> dict[str, type]:
    return {name: module.Config for name, module in modules().items()}


def backend_module(backend: str) -> ModuleType:
    found = modules()
    if backend not in found:
        raise ConfigError(f"unknown model backend {backend!r}; valid backends: {', '.join(sorted(found))}")
    return found[backend]
