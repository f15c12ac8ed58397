"""Qwen3-Reranker (0.6B / 4B / 8B) through plain transformers, as its model card runs it.

The model is a causal LM asked whether a document meets a query's requirements; the score is
the probability of "yes" against "no" at the last position. The model card's recipe, kept
exactly (tests/test_rerank.py checks the prompt by decoding the ids, and the scores against an
independent computation on fixed logits and against mteb's own wrapper):

* text = ``<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}``, tokenised alone and
  cut at ``max_length`` minus the template (the end of the document is cut first);
* ids = the system/user prefix + text + the assistant suffix (an empty ``<think>`` block);
* left padding; logits of the last position; softmax over (no, yes); score = P(yes).

The instruction is the one the embedding model gets for the task (the task's own, else the
Qwen3 default "Given a web search query, retrieve relevant passages that answer the query").
"""

from __future__ import annotations

import numpy as np

from evalkit.encoders.config import QWEN3_DEFAULT_INSTRUCTION

SYSTEM = ('Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
          'Note that the answer can only be "yes" or "no".')
PREFIX = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
MAX_LENGTH = 8192  # the model card's
DEFAULT_INSTRUCTION = QWEN3_DEFAULT_INSTRUCTION


def format_pair(instruction: str | None, query: str, doc: str) -> str:
    return f"<Instruct>: {instruction or DEFAULT_INSTRUCTION}\n<Query>: {query}\n<Document>: {doc}"


def pair_ids(tokenizer, texts: list[str], max_length: int = MAX_LENGTH) -> list[list[int]]:
    """Each formatted pair's token ids inside the template, cut to ``max_length`` in all."""
    prefix = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(SUFFIX, add_special_tokens=False)
    body = tokenizer(texts, padding=False, truncation="longest_first", return_attention_mask=False,
                     max_length=max_length - len(prefix) - len(suffix))["input_ids"]
    return [prefix + ids + suffix for ids in body]


def yes_probability(last_logits, yes_id: int, no_id: int):
    """P(yes) from the last position's logits (rows: pairs): softmax over the two answers, in float32."""
    import torch

    pair = torch.stack([last_logits[:, no_id], last_logits[:, yes_id]], dim=1).float()
    return torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp()


class Qwen3Reranker:
    """Scores (query, document) pairs: ``score(queries, docs, instruction)``."""

    def __init__(self, cfg):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from evalkit.encoders.torch_utils import resolve_device, resolve_dtype

        self.cfg, self.torch = cfg, torch
        self.max_length = cfg.max_length or MAX_LENGTH
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model_id, revision=cfg.revision, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = resolve_device(cfg.device)
        self.model = AutoModelForCausalLM.from_pretrained(cfg.model_id, revision=cfg.revision,
                                                          dtype=resolve_dtype(cfg.dtype, device)).to(device).eval()
        self.yes_id = self.tokenizer.convert_tokens_to_ids("yes")
        self.no_id = self.tokenizer.convert_tokens_to_ids("no")
        if self.yes_id is None or self.no_id is None or self.yes_id == self.tokenizer.unk_token_id:
            raise ValueError(f"{cfg.model_id}: the tokenizer has no single 'yes' / 'no' token: not a Qwen3-Reranker")

    def score(self, queries: list[str], docs: list[str], instruction: str | None) -> np.ndarray:
        torch = self.torch
        texts = [format_pair(instruction, q, d) for q, d in zip(queries, docs)]
        out = []
        for start in range(0, len(texts), self.cfg.batch_size):
            ids = pair_ids(self.tokenizer, texts[start : start + self.cfg.batch_size], self.max_length)
            batch = self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
            batch = {k: v.to(self.model.device) for k, v in batch.items()}
            with torch.inference_mode():
                logits = self.model(**batch).logits[:, -1, :]
            out.append(yes_probability(logits, self.yes_id, self.no_id).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def close(self) -> None:
        self.model = None
