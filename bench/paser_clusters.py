"""Benchmark: do PASER's clusters follow capabilities (the data sources of `bundled:mix`) or passages?

For each text a sample can be clustered on — `instruction` (what it asks first, then the context:
the default) and `sample` (prompt and answer as the data filter embeds them: the older behaviour) —
embed the pool with the bundled MiniLM, cluster it as `damoc recover` does (K auto, and K = the
number of sources), and report the adjusted Rand index against the sources and the 10-NN graph's
connected components.

    OMP_NUM_THREADS=1 .venv/bin/python bench/paser_clusters.py [--per-source 150]
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import RESULTS, envelope, write_json_atomic

from damoc.filtering.base import example_text
from damoc.filtering.embeddings import embed_with_cost
from damoc.recovery.cluster import cluster
from damoc.recovery.paser import adjusted_rand_vs_sources, instruction_text
from damoc.recovery.pool import load_pool, source_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-source", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pool = load_pool("bundled:mix", args.per_source, args.seed)
    sources = sorted({source_of(e) for e in pool})
    rows = []
    for name, text in (("instruction", instruction_text), ("sample", example_text)):
        start = time.perf_counter()
        emb, _ = embed_with_cost([text(e) for e in pool], "bundled:minilm")
        for k in ("auto", len(sources)):
            c = cluster(emb, k, seed=args.seed)
            rows.append({"cluster_text": name, "k_asked": k, "k": c.k, "graph_components": c.components,
                         "adjusted_rand_vs_sources": adjusted_rand_vs_sources(c.labels, pool),
                         "seconds": time.perf_counter() - start})
            print(rows[-1], flush=True)
    write_json_atomic(RESULTS / "paser-clusters.json", {
        **envelope(pool=len(pool), sources=sources, per_source=args.per_source, rows=rows,
                   torch_threads=torch.get_num_threads(), load=True),
        "seed": args.seed, "command": f"python bench/paser_clusters.py --per-source {args.per_source}"})


if __name__ == "__main__":
    main()
