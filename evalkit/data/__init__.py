"""Builders that turn raw public sources into evalkit's built-in task datasets.

One module per source (``laws``, ``manpages``, ``drcd``, ``pydocs``, ``tatoeba``, ``stdlib``,
``cosqa``; ``passkey`` and ``needle`` make one dataset per document length, on the statute
haystack of ``haystack``). Each has a ``VERSION`` (bump it when its output changes: the cache
rebuilds), ``KIND`` ("retrieval" or "pairs"), ``raw_paths(raw_dir)`` (what it reads) and
``build(raw_dir) -> RetrievalData | PairData`` (``build(raw_dir, arg)`` with ``ARGS`` for the
per-length ones: ``builder: passkey:4096``). Builders are deterministic: inputs sorted,
seeds fixed. Built files are cached in the BEIR layout under ``<cache_dir>/data/`` (see
:mod:`evalkit.data.store`) and read back by the same reader that reads user data
(:mod:`evalkit.data.beir`). CLI: ``python -m evalkit.data list | build <task> | info <task>``.
"""
