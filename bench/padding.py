"""Row 3: padding efficiency on zh_longdoc for a long-context model (tiny Qwen3 at 8,192 tokens).

Token counts come from the model's own tokenizer over every query and document of
zh_longdoc (instruction formatted into queries as the backend does). Efficiency is real
tokens / padded tokens (rows x longest row) of each plan: fixed batches in input order
(a plain DataLoader), fixed batches sorted by length (sentence-transformers / mteb), and
evalkit's token budget. A measured check encodes a sample through the real backend and
sums its BatchReports.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Row, raw_dir

MAX_LEN = 8192
BATCH = 8


def bench_padding(data_cache: Path, sample_texts: int = 120) -> list[Row]:
    from evalkit.batching import padding_tokens, plan_fixed_batches, plan_token_batches
    from evalkit.callbacks.base import Callback, CallbackList
    from evalkit.encoders.base import Role
    from evalkit.encoders.registry import build_encoder, validate_model_config
    from evalkit.tasks.registry import TaskConfig, prepare_task
    from tests.fixtures.tiny_qwen3 import make_tiny_qwen3

    class Reports(Callback):
        def __init__(self):
            self.real = self.padded = 0

        def on_batch_end(self, r):
            self.real += r.real_tokens
            self.padded += r.padded_tokens

    task = prepare_task("zh_longdoc", TaskConfig(names=["zh_longdoc"]), raw_dir(), data_cache)
    folder = make_tiny_qwen3(Path(tempfile.mkdtemp(prefix="tiny-qwen3-")))
    reports = Reports()
    cfg = {"name": "tiny_qwen3", "backend": "hf", "model_id": str(folder), "max_length": MAX_LEN, "device": "cpu", "batch_size": BATCH}
    enc = build_encoder(validate_model_config(cfg), hooks=CallbackList([reports]))

    queries, docs = [], []
    for sub in task.task.dataset.values():
        queries += list(sub["test"]["queries"]["text"])
        docs += list(sub["test"]["corpus"]["text"])
    lengths = enc.token_lengths(enc.prepare(queries, role=Role.QUERY, instruction=task.instruction))
    lengths += enc.token_lengths(enc.prepare(docs, role=Role.DOCUMENT))
    budget = BATCH * MAX_LEN
    plans = {
        f"fixed {BATCH}, input order": plan_fixed_batches(lengths, BATCH, sort=False),
        f"fixed {BATCH}, sorted (ST/mteb)": plan_fixed_batches(lengths, BATCH, sort=True),
        f"token budget {budget}": plan_token_batches(lengths, budget, max_tokens=MAX_LEN),
    }
    eff = {}
    for name, plan in plans.items():
        real, padded = padding_tokens(lengths, plan, MAX_LEN)
        eff[name] = (real / padded, len(plan))

    # Measured: a random sample (same mix of queries and documents) through the real backend;
    # its BatchReports must agree with the plan's arithmetic for that sample.
    import random

    pool = [(q, Role.QUERY) for q in queries] + [(d, Role.DOCUMENT) for d in docs]
    sample = random.Random(0).sample(pool, sample_texts)
    s_docs = [t for t, r in sample if r is Role.DOCUMENT]
    s_queries = [t for t, r in sample if r is Role.QUERY]
    enc.token_budget = budget
    planned_real = planned_padded = 0
    for texts, role, instr in ((s_queries, Role.QUERY, task.instruction), (s_docs, Role.DOCUMENT, None)):
        lens = enc.token_lengths(enc.prepare(texts, role=role, instruction=instr))
        real, padded = padding_tokens(lens, plan_token_batches(lens, budget, max_tokens=MAX_LEN), MAX_LEN)
        planned_real, planned_padded = planned_real + real, planned_padded + padded
        enc.encode(texts, role=role, instruction=instr)
    measured = reports.real / reports.padded
    planned_sample = planned_real / planned_padded
    enc.close()

    ours_name = f"token budget {budget}"
    ours, n_ours = eff[ours_name]
    rows = []
    for name, (e, n) in eff.items():
        if name == ours_name:
            continue
        rows.append(
            Row(
                "3 padding",
                f"zh_longdoc all {len(lengths)} texts, tiny Qwen3 @ {MAX_LEN}: budget vs {name}",
                f"{ours:.3f} ({n_ours} batches)",
                f"{e:.3f} ({n} batches)",
                ours / e,
                ">= 0.9 eff.",
                ours >= 0.9,
                f"{len(sample)}-text random sample encoded: {measured:.3f} measured, {planned_sample:.3f} planned",
                {"efficiency": {k: v[0] for k, v in eff.items()}, "batches": {k: v[1] for k, v in eff.items()}},
            )
        )
    return rows
