"""Row 2: evalkit's encode vs a bare model forward on the same pre-tokenised batches.

Bare: the batches evalkit would plan, tokenised before the clock starts; timed is only
``model(features)`` (transformer + pooling + normalise) under ``torch.inference_mode``.
evalkit: ``encode(texts)`` through the wrapper stack (cache off), i.e. everything a user
pays: tokenising for lengths, planning, the backend's own tokenising, the forward,
order restoration and checks. Runs are interleaved and the best of each is kept.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.common import MINILM, Row


def _texts(data_cache, n_docs: int, n_short: int) -> list[str]:
    from bench.common import raw_dir
    from evalkit.tasks.mteb_mirror import load_mirrored_task
    from evalkit.tasks.registry import TaskConfig, prepare_task

    longdoc = prepare_task("zh_longdoc", TaskConfig(names=["zh_longdoc"], limit=10), raw_dir(), data_cache).task
    docs = [t for sub in longdoc.dataset.values() for t in sub["test"]["corpus"]["text"]][:n_docs]
    bank, _ = load_mirrored_task("Banking77Classification", raw_dir(), limit=n_short)
    return docs + list(bank.dataset["test"]["text"])[:n_short]


def bench_overhead(data_cache, n_docs: int = 48, n_short: int = 384, repeats: int = 3) -> list[Row]:
    from evalkit.batching import plan_token_batches
    from evalkit.encoders.base import Role
    from evalkit.encoders.registry import build_encoder, validate_model_config
    from evalkit.encoders.wrappers import wrap_encoder

    texts = _texts(data_cache, n_docs, n_short)
    backend = build_encoder(validate_model_config(dict(MINILM)))

    class _Job:
        extra = {"cache": "off"}
        cache_dir = None
        model = None

    encoder = wrap_encoder(backend, _Job())
    st = backend.model
    limit = backend.meta.max_tokens
    plan = plan_token_batches(backend.token_lengths(texts), backend.effective_token_budget(), max_tokens=limit)
    features = [st.tokenize([texts[i] for i in idx]) for idx in plan]

    def bare() -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            for feats in features:
                out = st.forward(dict(feats))["sentence_embedding"]
                torch.nn.functional.normalize(out, p=2, dim=1).cpu().numpy()
        return time.perf_counter() - t0

    def evalkit() -> float:
        t0 = time.perf_counter()
        encoder.encode(texts, role=Role.DOCUMENT)
        return time.perf_counter() - t0

    bare(), evalkit()  # warm-up
    t_bare, t_ek = [], []
    for _ in range(repeats):
        t_bare.append(bare())
        t_ek.append(evalkit())
    # same vectors: the comparison is of the same work
    ref = np.concatenate([st.forward(dict(f))["sentence_embedding"].detach().numpy() for f in features[:1]])
    got = encoder.encode([texts[i] for i in plan[0]], role=Role.DOCUMENT)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    err = float(np.abs(ref - got).max())
    encoder.close()
    # Where the difference goes: tokenising, which the bare forward does not time.
    t0 = time.perf_counter()
    backend.token_lengths(texts)
    t_lengths = time.perf_counter() - t0
    t0 = time.perf_counter()
    for idx in plan:
        st.tokenize([texts[i] for i in idx])
    t_tok = time.perf_counter() - t0
    b, e = min(t_bare), min(t_ek)
    ratio = e / b
    return [
        Row(
            "2 overhead",
            f"MiniLM encode, {n_docs} zh_longdoc docs + {n_short} Banking77 texts, {len(plan)} batches",
            f"{len(texts) / e:.0f} texts/s",
            f"{len(texts) / b:.0f} texts/s",
            ratio,
            "<= 1.10x",
            ratio <= 1.10,
            f"overhead {100 * (ratio - 1):+.1f}%: tokenising {t_lengths + t_tok:.2f} s of {e - b:.2f} s "
            f"(lengths {t_lengths:.2f} s + batches {t_tok:.2f} s); max |vec diff| {err:.1e}",
            {"bare_s": t_bare, "evalkit_s": t_ek, "token_lengths_s": t_lengths, "batch_tokenize_s": t_tok},
        )
    ]
