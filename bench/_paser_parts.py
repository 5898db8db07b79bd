"""bench/paser.py's measurements of PASER's parts, apart from recovery: S2RIC's time and peak memory
at scale (`--part scale`), cheaper degradation estimates against the full one (`--part
estimators`) and the answer tokens each recorded run trained on (`--part subsets`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from _common import RESULTS, ROOT, child_json, command, envelope, read_json, write_json_atomic
from _paser_report import RECOVER


def scale_child(n: int, seed: int) -> None:
    """Runs in its own process so that its peak RSS is its own."""
    import resource

    import numpy as np

    from damoc.recovery.cluster import cluster

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((16, 384))
    x = centres[rng.integers(0, 16, n)] + 0.6 * rng.standard_normal((n, 384))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    start = time.perf_counter()
    result = cluster(x, "auto", seed=seed)  # defaults: 10 neighbours, K tried 1..20
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "seconds": seconds, "peak_rss_mb": peak_mb, "clusters_found": result.k,
                      "true_clusters": 16}))


def part_scale(args: argparse.Namespace) -> None:
    rows = []
    for n in (5000, 50000):  # each in a child of bench/paser.py --scale-child
        rows.append(child_json(str(ROOT / "paser.py"), "--scale-child", str(n), "--seed", str(args.seed)))
        print(rows[-1], flush=True)
    write_json_atomic(RESULTS / "paser-scale.json", {
        "rows": rows, **envelope(), "seed": args.seed, "command": "python bench/paser.py --part scale",
        "note": "synthetic 384-d unit embeddings around 16 centres (noise 0.6); cluster(k='auto'), "
                "K tried 1..20: kNN graph, Laplacian eigenpairs, 20 NMF fits"})


def part_estimators(args: argparse.Namespace, config) -> None:
    """Cheaper degradation estimates against the full one (issue 15, item 5), on the recovery
    benchmark's pool: the JSD with the prompt cut to its last N tokens (`--cuts`), and measured on a
    share of each cluster only (`--samples`, PASER's picks then come from the measured ones). Per
    estimate: seconds and FLOPs of the JSD pass, Spearman of the per-sample scores with the full
    one (on the samples both measured), and how much of the full estimate's PASER subset at
    `--budget` it picks. Run it with the recovery benchmark's DAMOC_HOME: the whole-prompt JSD is
    then read from its cache and its seconds are those of the benchmark's cold run. `config`: the
    benchmark's RecoverConfig (its models, pool and lengths)."""
    import numpy as np
    from scipy.stats import spearmanr

    from damoc.filtering.base import example_text, resolve_budget
    from damoc.filtering.embeddings import embed_with_cost
    from damoc.models import load_tokenizer
    from damoc.recovery.cluster import cluster
    from damoc.recovery.paser import ClusterPicker, Context, measure_degradation, measured_samples
    from damoc.recovery.run import recovery_pool

    pool, _, too_long = recovery_pool(config)
    budget = resolve_budget(len(pool), rate=args.budget, round_down=True)
    tok = load_tokenizer(config.original)
    texts = [example_text(e) for e in pool]
    labels = cluster(embed_with_cost(texts, "bundled:minilm", progress=False)[0], "auto", seed=args.seed).labels
    cold = (read_json(RECOVER) if RECOVER.exists() else {}).get("cold_selection", {}).get("paser")
    rows, full, full_pick = [], None, None
    for share in [None, *args.samples]:
        for cut in [None, *args.cuts]:
            ctx = Context(pool=pool, budget=budget, seed=args.seed, original=config.original, pruned=config.pruned,
                          max_len=args.max_seq_len, progress=False, jsd_prompt_tokens=cut, jsd_sample=share)
            measured = measured_samples(labels, share, args.seed)
            start = time.perf_counter()
            values, lengths, cached, flops = measure_degradation(ctx, tok, measured)
            seconds = time.perf_counter() - start
            if cached and cut is None and share is None and cold:
                seconds = cold["seconds_by_stage"]["jsd"]  # the benchmark's cold pass over the same pool
            pick = ClusterPicker(labels, values, lengths, texts, budget)
            pick.run()
            if full is None:
                full, full_pick = values, set(pick.chosen)
            both = np.isfinite(values)
            rows.append({"estimate": ("whole prompt" if cut is None else f"last {cut} prompt tokens")
                         + ("" if share is None else f", {share:g} of each cluster"),
                         "prompt_tokens": cut, "cluster_share": share, "measured": int(both.sum()),
                         "seconds": seconds, "seconds_from": "recover benchmark's cold run" if cached else "this run",
                         "jsd_flops": flops, "tokens": int(sum(lengths)),
                         "spearman_vs_full": float(spearmanr(values[both], full[both]).statistic),
                         "subset_overlap_with_full": len(set(pick.chosen) & full_pick) / budget})
            print(json.dumps(rows[-1]), flush=True)
            write_json_atomic(RESULTS / "paser-estimators.json", {
                **envelope(pool=len(pool), pool_left_out_too_long=too_long, budget=budget, max_len=args.max_seq_len,
                           clusters=int(labels.max()) + 1, rows=rows),
                "load": os.getloadavg(), "command": "DAMOC_HOME=<the recover benchmark's> " + command("paser.py")})


def part_subsets(args: argparse.Namespace, model: str, folder: Callable[[dict], Path]) -> None:
    """How many answer tokens each recorded run trained on (recovery puts its loss on the answer
    only, so at one sample budget a method that picks short answers trains on fewer tokens), from
    the subsets its run folder kept (`folder` of its record); runs whose folder is gone are left out."""
    from damoc.models import load_tokenizer
    from damoc.recovery.pool import load_pool
    from damoc.runinfo import versions
    from damoc.tasks.base import continuation

    doc = read_json(RECOVER)
    tok = load_tokenizer(model)
    pool = {e.id: e for e in load_pool("bundled:mix", args.per_source, args.seed)}
    rows = []
    for r in doc["runs"]:
        subset = folder(r) / "subset.jsonl"
        if not subset.exists():
            continue
        ids = [json.loads(line)["id"] for line in subset.read_text().splitlines()]
        tokens = [len(tok(continuation(pool[i]), add_special_tokens=False)["input_ids"]) for i in ids]
        rows.append({"method": r["method"], "budget": r["budget"], "seed": r["seed"], "samples": len(ids),
                     "answer_tokens": sum(tokens), "mean_answer_tokens": sum(tokens) / len(ids)})
        print(json.dumps(rows[-1]), flush=True)
    write_json_atomic(RESULTS / "paser-subsets.json", {"rows": rows, "tokenizer": model, "versions": versions(),
                                                       "command": "python bench/paser.py --part subsets"})
