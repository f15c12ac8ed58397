"""How instruction-following models see their inputs — shared by the local Qwen3 backend
(``hf``) and the endpoint client (``openai_compat``), so both send a server or a local
model the very same strings and give the same vectors.

Qwen3-Embedding (model card and its evaluation code):
  * queries:   ``Instruct: {instruction}\\nQuery:{text}``  (no space after "Query:")
  * documents: the raw text, no instruction
  * symmetric tasks (STS, pair classification, bitext mining, classification,
    clustering): the instruction goes on *every* text, both sides of a pair. In
    QwenLM/Qwen3-Embedding ``evaluation/qwen3_embedding_model.py`` (read in its public
    forks, e.g. fenghaitao/Qwen3-Embedding at 490a766108a8c791b45df4f51aed6d4fcee2b1a1),
    ``Qwen3Embedding.get_instruction`` drops the instruction only for retrieval
    documents; for STS / PairClassification it returns "Retrieve semantically similar
    text", for bitext mining "Retrieve parallel sentences", and ``encode`` then formats
    every sentence of the call with ``instruction_template`` "Instruct: {}\\nQuery:"
    (``run_mteb.sh``). mteb calls symmetric tasks with ``prompt_type=None``, i.e. both
    sides get it.
"""

from __future__ import annotations

from evalkit.encoders.base import Role
from evalkit.encoders.config import QWEN3_DEFAULT_INSTRUCTION, InstructionFormat


def qwen3_query(instruction: str, text: str) -> str:
    return f"Instruct: {instruction}\nQuery:{text}"


def format_inputs(
    texts: list[str],
    *,
    role: Role,
    instruction: str | None,
    instruction_format: InstructionFormat = "none",
    default_instruction: str | None = QWEN3_DEFAULT_INSTRUCTION,
    query_prefix: str = "",
    document_prefix: str = "",
) -> list[str]:
    """The exact strings the model sees for ``texts`` in ``role``.

    ``qwen3``: instruction on queries (task instruction, else ``default_instruction``)
    and, when the task has one, on both sides of symmetric tasks; documents raw.
    ``none``: the instruction is ignored; ``query_prefix`` / ``document_prefix`` are
    prepended (e5's "query: " / "passage: "), symmetric tasks get the query prefix as in
    e5's own evaluation.
    """
    if instruction_format == "qwen3":
        if role is Role.DOCUMENT:
            return list(texts)
        chosen = instruction or (default_instruction if role is Role.QUERY else None)
        if not chosen:
            return list(texts)
        return [qwen3_query(chosen, t) for t in texts]
    prefix = document_prefix if role is Role.DOCUMENT else query_prefix
    return [prefix + t for t in texts] if prefix else list(texts)
