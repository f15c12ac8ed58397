"""Texts in, vectors out: everything between a task and a model.

Floors, bottom first (``tests/test_layers.py`` keeps every import pointing down):

* the protocol and shared machinery — ``base`` (the Encoder protocol, roles, batch reports,
  the layer base class), ``config`` (what every backend's config shares), ``counters``,
  ``batching`` (token-budget batches and their settings), ``tokens`` (the tokenizer view),
  ``local`` (the encode loop of in-process models), ``lazy`` (the backend built on first use),
  ``instructions``, ``torch_utils``,
  ``endpoint*`` (the HTTP client), ``mteb_adapter`` (the Encoder as mteb's model);
* ``backends`` — one module per ``model.backend``, each exporting its ``Config`` and
  ``build(cfg, hooks, batching)``; the registry is the package's modules;
* ``parallel`` — the worker pool, the backend the builder picks for ``encode.workers`` /
  ``encode.devices``;
* ``layers`` — Encoders around an Encoder, each knowing only ``.inner``: cache (sqlite, or a
  shard job's file store), shard merge, dedup, progress, chunking, and the MaxP search;
* ``stack`` — the builder, the one place that knows the order of the layers.
"""
