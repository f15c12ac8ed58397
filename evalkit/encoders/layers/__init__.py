"""The layers of the encoder stack: Encoders around an Encoder that know only ``.inner``
(``evalkit.encoders.base.EncoderWrapper``). Their order is the builder's
(``evalkit.encoders.stack``), outermost first:

* ``chunking`` — texts longer than the model's window as pooled windows (``encode.long_docs=chunk``),
  and ``maxp``, the search strategy that scores a document by its best window;
* ``progress`` — texts done per encode call, for the progress display;
* the cache slot — ``cache`` (sqlite, shared by a sweep) over ``shard_merge`` (scoring from shard
  jobs' stores), or in a shard job ``shard_job`` (its own file store, ``shard_store``);
* ``dedup`` — each distinct text of a call once.
"""
