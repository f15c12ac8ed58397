"""Scale out one evaluation.

* Several devices or processes, one job (``encode.devices=[cuda:0,cuda:1]``, or
  ``encode.workers=N`` with ``encode.threads=M`` on CPU): :func:`build_parallel` gives the
  backend of the encoder stack, a :class:`~evalkit.parallel.pool.ParallelEncoder` whose
  worker processes (``evalkit.parallel.workers``) each keep the model loaded.
* Several machines, one task (``encode.shard=i/N``): ``evalkit.parallel.shards`` — shard
  jobs store their share of every task's vectors (``evalkit.parallel.store``); a scoring
  run without ``encode.shard`` merges the complete set into the embedding cache and scores.

Neither changes a score: both are speed-only settings, outside the config hash.
"""

from __future__ import annotations

from evalkit.parallel.devices import threads_per_worker, worker_devices
from evalkit.parallel.workers import EncodeWorkerError

__all__ = ["EncodeWorkerError", "build_parallel", "worker_devices"]


def build_parallel(model_cfg, encode_cfg, hooks, batching):
    """The stack's backend when ``encode.workers > 1`` or ``encode.devices`` is set: worker
    processes that each build ``backend_module(cfg.backend).build(cfg, hooks, batching)``
    on their device. Raises ConfigError for a device this machine does not have."""
    from evalkit.parallel.pool import ParallelEncoder

    devices = worker_devices(model_cfg, encode_cfg)
    return ParallelEncoder(model_cfg, devices, threads_per_worker(encode_cfg, len(devices)), hooks, batching)
