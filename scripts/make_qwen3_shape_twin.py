"""Build the Qwen3-Embedding-0.6B shape twin (random weights — cost only, no scores).

    python scripts/make_qwen3_shape_twin.py                      # -> outputs/qwen3_0_6b_shape_twin
    python scripts/make_qwen3_shape_twin.py --out /tmp/twin --check-only

Checks the architecture's parameter count against mteb's ModelMeta for
Qwen/Qwen3-Embedding-0.6B (595,776,512) before writing anything, then writes a folder that
``model=qwen3_0_6b model.model_id=<folder>`` loads. What it is and how it is built:
``bench/shape_twin.py``. Measure it with ``task=perf`` (docs/speed.md has the command);
label every figure "random weights — cost only, no scores".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shape_twin import EXPECTED_PARAMETERS, LABEL, make_shape_twin, mteb_parameters, parameter_count, shape_config  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("outputs/qwen3_0_6b_shape_twin"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check-only", action="store_true", help="count parameters, write nothing")
    args = ap.parse_args(argv)

    n = parameter_count(shape_config())
    registry = mteb_parameters()
    print(f"Qwen3Model with Qwen3-Embedding-0.6B's shape: {n:,} parameters; mteb's ModelMeta: "
          f"{registry:,}" if registry else f"{n:,} parameters; mteb's ModelMeta has no entry")
    if n != EXPECTED_PARAMETERS or (registry is not None and registry != n):
        print(f"parameter count mismatch (expected {EXPECTED_PARAMETERS:,})", file=sys.stderr)
        return 1
    if args.check_only:
        return 0
    t0 = time.perf_counter()
    folder = make_shape_twin(args.out, seed=args.seed)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    print(f"wrote {folder} ({size:.0f} MiB, {time.perf_counter() - t0:.0f} s): {LABEL}")
    print(f"measure: python -m evalkit model=qwen3_0_6b model.model_id={folder} model.name=qwen3_0_6b_shape_twin "
          "model.revision=null task=perf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
