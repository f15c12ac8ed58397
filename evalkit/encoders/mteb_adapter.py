"""Turns an evalkit Encoder into mteb's encoder protocol, so mteb's evaluators score it."""

from __future__ import annotations

from typing import Any

import numpy as np
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType

from evalkit.encoders.base import Encoder, Role


def role_for(prompt_type: PromptType | None) -> Role:
    if prompt_type == PromptType.query:
        return Role.QUERY
    if prompt_type == PromptType.document:
        return Role.DOCUMENT
    return Role.SYMMETRIC


class MtebEncoderAdapter(AbsEncoder):
    """mteb calls ``encode(DataLoader, task_metadata=…, prompt_type=…)``; we hand plain texts,
    the role and the task's instruction to the evalkit Encoder."""

    def __init__(self, encoder: Encoder, instructions: dict[str, str | None] | None = None):
        self.encoder = encoder
        self.instructions = instructions or {}  # task name -> instruction
        meta = encoder.meta
        self.mteb_model_meta = ModelMeta.create_empty(
            overwrites={
                "name": _mteb_name(meta.name),
                "revision": meta.revision or "no_revision_available",
                "similarity_fn_name": ScoringFunction.DOT_PRODUCT
                if meta.similarity == "dot"
                else ScoringFunction.COSINE,
                "embed_dim": meta.dim,
                "max_tokens": meta.max_tokens,
            }
        )

    def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs: Any) -> np.ndarray:
        texts: list[str] = []
        for batch in inputs:
            texts.extend(batch["text"])
        instruction = self.instructions.get(task_metadata.name, task_metadata.prompt if isinstance(task_metadata.prompt, str) else None)
        return self.encoder.encode(texts, role=role_for(prompt_type), instruction=instruction)


def corpus_texts(corpus) -> list[str]:
    """A retrieval corpus's documents as mteb's dataloader forms them: title and text joined."""
    titles = corpus["title"] if "title" in corpus.column_names else [""] * len(corpus)
    return [f"{t} {x}".strip() if t else x for t, x in zip(titles, corpus["text"])]


def _mteb_name(name: str) -> str:
    # mteb wants "org/model"; evalkit model names are flat config names.
    return name if "/" in name else f"evalkit/{name}"
