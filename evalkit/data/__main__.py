"""Task data: the pinned raw sources and the datasets built from them.

  sources [TASK|all]             what is locked: files, size, upstream, license per source
  pull [TASK|all] [--bundle T]   download (or take out of a bundle) the locked files, verified
  verify [DIR|BUNDLE.tar]        check a raw-data folder or a bundle against the lock
  bundle OUT.tar [TASK|all]      the verified raw files in one tar, for a machine offline
  lock --from DIR                write the lock (evalkit/data/sources.lock.json) from a raw folder
  list | build TASK|all | info TASK     built datasets, their statistics and data cards

Raw data: --raw-data, else $EVALKIT_RAW_DATA, else $EVALKIT_CACHE_DIR/raw, else the platform's
cache folder (~/.cache/evalkit/raw on Linux). Downloads: GitHub at pinned commits and one Debian
package from a Debian mirror ($EVALKIT_DEBIAN_MIRROR, else this machine's apt sources);
$EVALKIT_DATA_MIRROR=<base URL> fetches every https://HOST/PATH as <base>/HOST/PATH instead;
$EVALKIT_OFFLINE=1 (or --offline) never downloads. Built data: --cache-dir or $EVALKIT_CACHE_DIR
(default ${EVALKIT_OUTPUT_DIR:-outputs}/cache, as conf/paths/default.yaml).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from evalkit.data import lock, raw, stats, store, validity
from evalkit.data.pull import FetchSettings, pull
from evalkit.errors import EvalkitError, unknown_name
from evalkit.tasks.spec import builtin_spec, builtin_task_names as task_names


def _builders(task: str) -> list[tuple[str, str]]:
    spec, _ = builtin_spec(task)
    return [(name, sub.builder) for name, sub in spec.subset_specs().items() if sub.builder]


def cmd_list(args) -> None:
    root = store.data_root(args.cache_dir)
    print(f"{'task':<12} {'type':<13} {'subset':<10} {'builder':<13} built (cache: {root})")
    for task in task_names():
        spec, _ = builtin_spec(task)
        for subset, builder in _builders(task):
            meta_path = root / store.built_folder_name(builder) / "build.json"
            built = "-"
            if meta_path.exists():
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                built = f"v{meta['key']['version']} {meta['fingerprint']} {meta['counts']}"
            print(f"{task:<12} {spec.type:<13} {subset:<10} {builder:<13} {built}")


def cmd_build(args) -> None:
    tasks = task_names() if args.task == "all" else [args.task]
    for task in tasks:
        for subset, builder in _builders(task):
            t0 = time.perf_counter()
            folder, meta = store.ensure_built(builder, args.raw_data, args.cache_dir, force=args.force, fetch=_fetch(args))
            print(f"{task}/{subset}: {meta['counts']} {meta['fingerprint']} -> {folder} ({time.perf_counter() - t0:.1f} s)")


def task_needs(task: str) -> list[str]:
    """Paths under the raw-data folder that ``task`` reads (``all``: every locked source)."""
    from evalkit.tasks.mteb_mirror import MIRROR_FILES

    if task == "all":
        return lock.all_needs()
    if task in MIRROR_FILES:
        return MIRROR_FILES[task]
    if task == "perf":
        return ["laws"]
    if task not in task_names():
        raise unknown_name("task", task, [*task_names(), *MIRROR_FILES, "perf", "all"])
    base = Path("/raw")
    return sorted({n for _, builder in _builders(task) for n in store.builder_needs(builder, base)})


def _fetch(args, mirror: str | None = None) -> FetchSettings:
    return FetchSettings.resolve(True if args.offline else None, mirror)


def _raw_dir(args) -> Path:
    return Path(args.raw_data) if args.raw_data else raw.default_raw_dir()


def cmd_sources(args) -> None:
    print("\n".join(raw.sources_summary(lock.entries_for(task_needs(args.task)))))


def cmd_pull(args) -> None:
    settings = _fetch(args, args.mirror)
    entries = lock.entries_for(task_needs(args.task))
    folder = _raw_dir(args)
    if args.bundle is None:
        print(f"pull {args.task}: {len(entries):,} locked files into {folder}", file=sys.stderr)
    summary = pull(entries, folder, settings, bundle=args.bundle, progress=args.progress)
    print("\n".join(summary.lines()))


def cmd_verify(args) -> int:
    from evalkit.data import verify
    from evalkit.data.bundle import check_bundle

    entries = lock.entries_for(task_needs(args.task))
    target = Path(args.target) if args.target else _raw_dir(args)
    if target.is_file():
        state = check_bundle(entries, target)
    else:
        state = verify.check(entries, target, sorted({e.source.name for e in entries}))  # whole source folders
    for line in state.problems(limit=1000 if args.all else 10):
        print(line)
    print(f"{target}: {len(state.ok):,} of {len(entries):,} locked files verified"
          + ("" if state.clean else f", {len(state.missing):,} missing, {len(state.modified):,} modified, "
             f"{len(state.extra):,} extra"))
    return 0 if state.clean else 1


def cmd_bundle(args) -> None:
    from evalkit.data.bundle import write_bundle

    needs = task_needs(args.task)
    folder = raw.ensure_raw(needs, _raw_dir(args), _fetch(args), what=f"bundle {args.task}")
    entries = lock.entries_for(needs)
    size = write_bundle(entries, folder, args.out)
    print(f"{args.out}: {len(entries):,} verified files ({size / 1e6:.1f} MB) from {folder}; on the other machine: "
          f"python -m evalkit.data pull {args.task} --bundle {args.out.name}")


def cmd_lock(args) -> None:
    sources = lock.make_lock(args.from_dir)
    args.out.write_text(lock.lock_text(sources), encoding="utf-8")
    print(f"{args.out}: {sum(len(s.files) for s in sources.values()):,} files of {len(sources)} sources from {args.from_dir}")


def cmd_info(args) -> None:
    spec, _ = builtin_spec(args.task)
    report = {"task": spec.name, "type": spec.type, "main_metric": spec.main_metric, "subsets": {}}
    for subset, builder in _builders(args.task):
        folder, meta = store.ensure_built(builder, args.raw_data, args.cache_dir, fetch=_fetch(args))
        entry = {"builder": builder, "version": meta["key"]["version"], "fingerprint": meta["fingerprint"], "dropped_while_building": meta["dropped"]}
        entry |= (meta.get("extra") or {}) | {"build_facts": sorted(meta.get("extra") or {})}
        entry.update(stats.subset_stats(folder, meta["kind"], baseline=not args.no_baseline, tokenizers=args.tokenizers))
        if meta["kind"] == "retrieval" and not args.no_baseline:  # by evidence depth; None: no positions
            entry["by_depth"] = validity.depth_checks(folder)
        report["subsets"][subset] = entry
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    elif args.markdown:
        print(markdown_report(report))
    else:
        print_report(report)


def print_report(report: dict) -> None:
    print(f"{report['task']} ({report['type']}, main metric {report['main_metric']})")
    for subset, e in report["subsets"].items():
        print(f"\n[{subset}] builder {e['builder']} v{e['version']} {e['fingerprint']}")
        if "pairs" in e:
            print(f"  pairs: {e['pairs']}")
            sides = ("sentence1", "sentence2")
        else:
            print(f"  queries: {e['queries']}  documents: {e['documents']}  relevant/query: {e['relevant_per_query']}")
            sides = ("query", "document")
        for side in sides:
            for unit, d in e[side].items():
                if unit.endswith("_over"):
                    over = ", ".join(f">{k}: {v}" for k, v in d.items())
                    print(f"  {side} {unit.removesuffix('_over')} tokens over  {over}")
                else:
                    print(f"  {side} {unit:<13} min {d['min']}  median {d['median']}  p90 {d['p90']}  max {d['max']}")
        if "lexical_baseline" in e:
            print(f"  lexical baseline: {e['lexical_baseline']}")
        validity.print_depth_checks(e.get("by_depth"))  # nothing without evidence positions
        for key in e.get("build_facts", []):
            print(f"  {key}: {e[key]}")
        print(f"  dropped while building: {e['dropped_while_building']}")


def markdown_report(report: dict) -> str:
    """The statistics tables of a data card (tasks/<task>.md)."""
    if all("target_tokens" in e for e in report["subsets"].values()):
        return length_table(report)
    out = []
    for subset, e in report["subsets"].items():
        module, arg = store.split_builder(e["builder"])
        out.append(f"### {subset}\n")
        out.append(f"Builder `evalkit/data/{module}.py`{f' ({arg})' if arg else ''} v{e['version']}, data fingerprint `{e['fingerprint']}`.\n")
        if "pairs" in e:
            out.append(f"Pairs: **{e['pairs']:,}**" + (f" (sampled from {e['eligible_pairs']:,} eligible)" if "eligible_pairs" in e else "") + "\n")
            sides = ("sentence1", "sentence2")
        else:
            out.append(f"Queries: **{e['queries']:,}**, documents: **{e['documents']:,}**, relevant documents per query: {e['relevant_per_query']}\n")
            sides = ("query", "document")
        out.append("| text | unit | min | median | p90 | max |\n|---|---|---|---|---|---|")
        for side in sides:
            for unit, d in e[side].items():
                if not unit.endswith("_over"):
                    out.append(f"| {side} | {unit.replace('_', ' ')} | {d['min']:,} | {d['median']:,} | {d['p90']:,} | {d['max']:,} |")
        overs = [(u.removesuffix("_over"), d) for u, d in e.get("document", {}).items() if u.endswith("_over")]
        if overs:
            out.append("\n| tokenizer | documents > 512 tokens | > 8,192 | > 32,768 |\n|---|---|---|---|")
            for tok, d in overs:
                out.append(f"| {tok} | {d['512']:,} | {d['8192']:,} | {d['32768']:,} |")
        if "lexical_baseline" in e:
            out.append("\nLexical baseline: " + ", ".join(f"{k} = {v:.4f}" for k, v in e["lexical_baseline"].items()))
        out += validity.markdown_depth_checks(e.get("by_depth"))
        out.append("\nDropped while building: " + (", ".join(f"{k} {v:,}" for k, v in e["dropped_while_building"].items()) or "nothing") + "\n")
    return "\n".join(out)


def length_table(report: dict) -> str:
    """One row per document length (tasks whose subsets are lengths, like zh_passkey), then the
    build facts (build.json) the lengths share and those that differ."""
    subsets = report["subsets"]
    toks = [u.removesuffix("_tokens") for u in next(iter(subsets.values()))["document"] if u.endswith("_tokens")]
    head = ["subset", "queries", "documents", "document chars (median)"]
    head += [f"document {t} tokens (min / median / max)" for t in toks] + ["needle depth (min / median / max)"]
    baseline = "lexical_baseline" in next(iter(subsets.values()))
    head += ["BM25 nDCG@1", "BM25 nDCG@10"] if baseline else []
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for subset, e in subsets.items():
        row = [f"`{subset}`", f"{e['queries']:,}", f"{e['documents']:,}", f"{e['document']['chars']['median']:,}"]
        row += [" / ".join(f"{e['document'][f'{t}_tokens'][k]:,}" for k in ("min", "median", "max")) for t in toks]
        row.append(" / ".join(f"{e['needle_depth'][k]:.2f}" for k in ("min", "median", "max")))
        if baseline:
            row += [f"{e['lexical_baseline']['bm25_ndcg_at_1']:.4f}", f"{e['lexical_baseline']['bm25_ndcg_at_10']:.4f}"]
        out.append("| " + " | ".join(row) + " |")
    per_length = ("seed", "max_abs_length_error_tokens", "haystack_windows_disjoint")
    out.append("\n| subset | data fingerprint | " + " | ".join(k.replace("_", " ") for k in per_length) + " |")
    out.append("|" + "---|" * (2 + len(per_length)))
    for subset, e in subsets.items():
        out.append(f"| `{subset}` | `{e['fingerprint']}` | " + " | ".join(str(e.get(k, "-")) for k in per_length) + " |")
    first = next(iter(subsets.values()))
    shared = {k: first[k] for k in first["build_facts"]
              if k not in per_length and all(e.get(k) == first[k] for e in subsets.values())}
    shared["dropped_while_building"] = first["dropped_while_building"] if all(
        e["dropped_while_building"] == first["dropped_while_building"] for e in subsets.values()) else "per subset"
    out.append("\nBuilder `evalkit/data/{}.py` v{}; build facts shared by every length (build.json):\n".format(
        store.split_builder(first["builder"])[0], first["version"]))
    out += [f"- {k}: {_fact(v)}" for k, v in shared.items()]
    return "\n".join(out) + "\n"


def _fact(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fact(v)}" for k, v in value.items()) or "nothing"
    return f"`{value}`" if isinstance(value, str) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalkit.data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-data", type=Path, default=os.environ.get("EVALKIT_RAW_DATA"), help="raw-data folder (default: see above)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache folder (default $EVALKIT_CACHE_DIR or outputs/cache)")
    parser.add_argument("--offline", action="store_true", help="never download (as EVALKIT_OFFLINE=1)")
    sub = parser.add_subparsers(dest="command", required=True)
    so = sub.add_parser("sources", help="the locked sources: files, size, download, upstream, license")
    so.add_argument("task", nargs="?", default="all", help="only what this task reads (default: all)")
    p = sub.add_parser("pull", help="download the locked files a task needs, each verified (a rerun fetches only what is missing or wrong)")
    p.add_argument("task", nargs="?", default="all", help="task name (built-in or MTEB mirror) or 'all' (default)")
    p.add_argument("--bundle", type=Path, help="take the files out of this bundle instead of downloading")
    p.add_argument("--mirror", help="base URL of a mirror (as EVALKIT_DATA_MIRROR)")
    p.add_argument("--progress", choices=("auto", "bar", "lines", "off"), default="auto")
    v = sub.add_parser("verify", help="check a raw-data folder or a bundle against the lock (exit 1 if anything differs)")
    v.add_argument("target", nargs="?", help="folder or bundle (default: the raw-data folder)")
    v.add_argument("--task", default="all", help="check only what this task reads")
    v.add_argument("--all", action="store_true", help="list every problem, not the first 10 of each kind")
    bu = sub.add_parser("bundle", help="write the verified raw files of a task (or all) into a tar")
    bu.add_argument("out", type=Path, help="OUT.tar (or .tar.gz)")
    bu.add_argument("task", nargs="?", default="all")
    lk = sub.add_parser("lock", help="write the sources lock from a raw-data folder")
    lk.add_argument("--from", dest="from_dir", type=Path, required=True, help="raw-data folder holding every source")
    lk.add_argument("--out", type=Path, default=lock.LOCK_PATH, help=f"default: {lock.LOCK_PATH}")
    sub.add_parser("list", help="built-in tasks, their subsets and what is built")
    b = sub.add_parser("build", help="build (or verify the cache of) a task's data")
    b.add_argument("task", help="task name or 'all'")
    b.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    i = sub.add_parser("info", help="statistics: counts, lengths in characters and tokens, lexical baseline")
    i.add_argument("task")
    i.add_argument("--json", action="store_true")
    i.add_argument("--markdown", action="store_true", help="the statistics tables of the data card")
    i.add_argument("--no-baseline", action="store_true", help="skip the BM25 baseline and its by-evidence-depth checks (BM25, title only)")
    i.add_argument("--tokenizers", nargs="+", choices=("minilm", "qwen"), default=None,
                   help="count tokens with only these tokenizers (default: every installed one; counting long documents takes time)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    commands = {"sources": cmd_sources, "pull": cmd_pull, "verify": cmd_verify, "bundle": cmd_bundle, "lock": cmd_lock,
                "list": cmd_list, "build": cmd_build, "info": cmd_info}
    try:
        return commands[args.command](args) or 0
    except EvalkitError as exc:
        print(f"evalkit.data: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evalkit.data: interrupted; every file already in place is complete and verified, a rerun fetches the rest",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
