"""Wrappers around a built Encoder (embedding cache, long-document chunking, …).

``wrap_encoder`` is called by the runner once per job; wrappers take an Encoder and are
Encoders, so no backend needs flags for them.
"""

from __future__ import annotations

from evalkit.encoders.base import Encoder


def wrap_encoder(encoder: Encoder, job) -> Encoder:
    return encoder
