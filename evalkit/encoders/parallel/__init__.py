"""Several devices or processes, one job (``encode.devices=[cuda:0,cuda:1]``, or ``encode.workers=N``
with ``encode.threads=M`` on CPU): the backend the builder picks then is a
:class:`~evalkit.encoders.parallel.pool.ParallelEncoder`, whose worker processes
(``evalkit.encoders.parallel.workers``) each keep the model's own backend loaded.

Speed-only: outside the config hash, never a different score. Several *machines* on one task
are shard jobs instead (``encode.shard=i/N``: ``evalkit.encoders.layers.shard_job``).
"""

from __future__ import annotations

from evalkit.encoders.parallel.devices import threads_per_worker, worker_devices
from evalkit.encoders.parallel.workers import EncodeWorkerError

__all__ = ["EncodeWorkerError", "build", "wanted", "worker_devices"]


def wanted(encode_cfg) -> bool:
    return encode_cfg.workers > 1 or bool(encode_cfg.devices)


def build(model_cfg, encode_cfg, hooks, batching):
    """The pool: worker processes that each build ``backend_module(cfg.backend).build(cfg, hooks,
    batching)`` on their device. Raises ConfigError for a device this machine does not have."""
    from evalkit.encoders.parallel.pool import ParallelEncoder

    devices = worker_devices(model_cfg, encode_cfg)
    return ParallelEncoder(model_cfg, devices, threads_per_worker(encode_cfg, len(devices)), hooks, batching)
