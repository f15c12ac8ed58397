"""Section 6: ``encode.prefetch`` on vs off on the CPU (tokenising the next window on a thread).

Prefetch overlaps tokenising window k+1 (``evalkit.encoders.local.WINDOW`` texts) with the
forward passes of window k. On a CPU the tokenizer thread competes with torch's threads for
the same cores, so the row checks that it does not slow things down. Texts: the first two
windows (8,192) of Banking77's 10,003 training texts (the largest single encode call of the
section-1 tasks). Two stacks, cache off, same model files; runs alternate (ABBA), best of each kept.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import Row, load_task, minilm_cfg, task_texts


def bench_prefetch(data_cache, repeats: int = 2, n_windows: int = 2) -> list[Row]:
    import torch

    from evalkit.encoders.base import Role
    from evalkit.encoders.local import WINDOW
    from evalkit.encoders.stack import build_stack
    from evalkit.schema import EncodeConfig

    texts = task_texts(load_task("Banking77Classification", data_cache))["default/train/text"][: n_windows * WINDOW]
    stacks = {on: build_stack(minilm_cfg(), EncodeConfig(cache="off", prefetch=on), lazy=False) for on in (True, False)}

    def timed(on: bool) -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        vecs = stacks[on].encoder.encode(texts, role=Role.SYMMETRIC)
        return time.perf_counter() - t0, vecs

    for on in (True, False):  # warm-up, both
        stacks[on].encoder.encode(texts[:256], role=Role.SYMMETRIC)
    times: dict[bool, list[float]] = {True: [], False: []}
    cpu = {True: 0.0, False: 0.0}
    vecs = {}
    for i in range(repeats):
        for on in (True, False) if i % 2 == 0 else (False, True):
            c0 = time.process_time()
            s, vecs[on] = timed(on)
            cpu[on] += time.process_time() - c0
            times[on].append(s)
    for s in stacks.values():
        s.close()
    same = bool(np.array_equal(vecs[True], vecs[False]))
    on, off = min(times[True]), min(times[False])
    ratio = on / off
    windows = -(-len(texts) // WINDOW)
    return [Row("6 prefetch", f"MiniLM, Banking77 train ({len(texts)} texts, {windows} windows), "
                f"{torch.get_num_threads()} torch threads", f"{on:.2f} s (prefetch on)", f"{off:.2f} s (off)", ratio,
                "<= 1.02x", ratio <= 1.02,
                f"runs on {[round(x, 2) for x in times[True]]} / off {[round(x, 2) for x in times[False]]}; "
                f"CPU s {cpu[True]:.0f}/{cpu[False]:.0f}; vectors {'identical' if same else 'DIFFER'}",
                {"on_s": times[True], "off_s": times[False], "cpu_s": {"on": cpu[True], "off": cpu[False]}, "identical": same})]
