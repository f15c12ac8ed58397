"""Section 2: evalkit's encode vs a bare model forward on the same pre-tokenised batches.

Bare: the batches evalkit plans, tokenised and turned into padded tensors before the clock
starts; timed is only the sentence-transformers module pipeline (transformer, pooling) and
the L2 normalisation under ``torch.inference_mode``. evalkit: ``encode(texts)`` through the
encoder stack (``build_stack``, cache off; the texts are distinct, so dedup does nothing),
i.e. everything a user pays: tokenising (once), planning, padding into tensors, the same
forward, order restoration and output checks. Runs alternate (ABBA) and the best of each
is kept; the vectors must agree.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import Row, load_task, minilm_cfg, task_texts


def sample_texts(data_cache, docs_per_subset: int, n_short: int) -> list[str]:
    """Long zh_longdoc documents from each subset and short Banking77 queries, distinct."""
    longdoc = task_texts(load_task("zh_longdoc", data_cache))
    docs = [t for k, v in longdoc.items() if k.endswith("/corpus") for t in v[:docs_per_subset]]
    bank = task_texts(load_task("Banking77Classification", data_cache))["default/test/text"][:n_short]
    return list(dict.fromkeys(docs + bank))


def _features(backend, ids: list[list[int]]):
    """The padded tensors ``forward_ids`` builds, built here ahead of time."""
    import torch

    tok = backend.tokenizer
    width = max(len(x) for x in ids)
    pad = tok.pad_token_id or 0
    rows = [x + [pad] * (width - len(x)) for x in ids]
    masks = [[1] * len(x) + [0] * (width - len(x)) for x in ids]
    feats = {"input_ids": torch.tensor(rows), "attention_mask": torch.tensor(masks), "modality": "text"}
    if "token_type_ids" in tok.model_input_names:
        feats["token_type_ids"] = torch.zeros_like(feats["input_ids"])
    return feats


def bench_overhead(data_cache, docs_per_subset: int = 40, n_short: int = 1000, repeats: int = 2) -> list[Row]:
    import torch

    from evalkit.encoders.batching import plan_token_batches
    from evalkit.encoders.base import Role
    from evalkit.encoders.stack import build_stack
    from evalkit.schema import EncodeConfig

    texts = sample_texts(data_cache, docs_per_subset, n_short)
    encode_cfg = EncodeConfig(cache="off")
    stack = build_stack(minilm_cfg(), encode_cfg, lazy=False)
    backend = stack.model()
    assert backend.tokenizer.padding_side == "right" and backend.fast_ids
    view, limit, st = backend.view, backend.meta.max_tokens, backend.model

    def plan_and_ids():
        content = view.encode(backend.prepare(texts, role=Role.DOCUMENT))
        lengths = [len(c) + view.n_special for c in content]
        plan = plan_token_batches(lengths, backend.effective_token_budget(), max_tokens=limit,
                                  min_efficiency=encode_cfg.min_padding_efficiency)
        return plan, [[view.with_specials(content[i]) for i in idx] for idx in plan]

    t0 = time.perf_counter()
    plan, batch_ids = plan_and_ids()
    t_tokenise_plan = time.perf_counter() - t0
    t0 = time.perf_counter()
    features = [_features(backend, ids) for ids in batch_ids]
    t_tensors = time.perf_counter() - t0

    def bare() -> tuple[float, list[np.ndarray]]:
        out = []
        t0 = time.perf_counter()
        with torch.inference_mode():
            for feats in features:
                emb = st(dict(feats))["sentence_embedding"]
                out.append(torch.nn.functional.normalize(emb, p=2, dim=1).cpu().numpy())
        return time.perf_counter() - t0, out

    def evalkit() -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        vecs = stack.encoder.encode(texts, role=Role.DOCUMENT)
        return time.perf_counter() - t0, vecs

    # warm-up, both: the first batches (kernels, allocator) — a full pass would double the cost
    warm_texts, warm_feats = texts[:64], features[:2]
    with torch.inference_mode():
        for feats in warm_feats:
            st(dict(feats))
    stack.encoder.encode(warm_texts, role=Role.DOCUMENT)
    t_bare, t_ek = [], []
    cpu = {"bare": 0.0, "evalkit": 0.0}
    for i in range(repeats):
        for side in ("bare", "evalkit") if i % 2 == 0 else ("evalkit", "bare"):
            c0 = time.process_time()
            if side == "bare":
                s, ref = bare()
                t_bare.append(s)
            else:
                s, got = evalkit()
                t_ek.append(s)
            cpu[side] += time.process_time() - c0
    stack.close()
    ref_all = np.empty_like(got)
    for idx, vecs in zip(plan, ref):
        ref_all[idx] = vecs
    err = float(np.abs(ref_all - got).max())
    b, e = min(t_bare), min(t_ek)
    ratio = e / b
    n_tok = sum(len(x) for ids in batch_ids for x in ids)
    note = (f"overhead {e - b:+.2f} s ({100 * (ratio - 1):+.1f}%), CPU s {cpu['evalkit']:.1f}/{cpu['bare']:.1f}; "
            f"outside the forward, measured apart: "
            f"tokenise+plan {t_tokenise_plan:.2f} s, padded tensors {t_tensors:.2f} s; max |vec diff| {err:.1e}")
    return [
        Row("2 overhead", f"MiniLM encode, {len(texts)} texts ({3 * docs_per_subset} zh_longdoc docs + Banking77), "
            f"{len(plan)} batches, {n_tok} tokens", f"{e:.2f} s", f"{b:.2f} s (bare forward)", ratio, "<= 1.05x",
            ratio <= 1.05, note,
            {"bare_s": t_bare, "evalkit_s": t_ek, "tokenise_plan_s": t_tokenise_plan, "tensors_s": t_tensors,
             "max_abs_diff": err, "batches": len(plan), "cpu_s": cpu}),
    ]
