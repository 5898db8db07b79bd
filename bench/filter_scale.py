"""Benchmark: GraphCut selection at scale, ours against submodlib-py, side by side in one run.

Each case runs in its own process (so its peak memory is its own) on seeded random 384-d
unit vectors with a 10% budget and lam = 0.4. Peak memory includes the embeddings
themselves (N x 384 float32: 15 MB at 10k, 1.5 GB at 1M). A second part compares the
objective both reach on the same 5,000 real MiniLM embeddings (BoolQ training texts), with
submodlib given the same cosine kernel, so both maximise the same function.

    .venv/bin/python bench/filter_scale.py            # writes bench/results/filter-scale.json + .png
    .venv/bin/python bench/filter_scale.py --sizes 100000,1000000 --impls damoc,damoc-exact --merge
                                                      # re-time ours only, keep submodlib's rows
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, child_json, command, envelope, pyplot, read_json, save_figure, write_json_atomic

LAM = 0.4
DIM = 384


def random_unit(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):  # in chunks: float64 normals for 1M rows would need 3 GB
        block = rng.standard_normal((min(100_000, n - start), DIM), dtype=np.float32)
        out[start:start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def run_case(impl: str, n: int) -> dict:
    """One selection in this process; prints a JSON row."""
    from damoc.filtering.graphcut import graphcut_greedy, graphcut_objective

    e = random_unit(n)
    budget = n // 10
    start = time.perf_counter()
    if impl in ("damoc", "damoc-exact"):
        chosen = graphcut_greedy(e, budget, LAM, exact=True if impl == "damoc-exact" else None)
    elif impl.startswith("submodlib"):
        from submodlib import GraphCutFunction

        mode = impl.split("-")[1]
        kwargs = {"num_neighbors": 100} if mode == "sparse" else {}
        f = GraphCutFunction(n=n, mode=mode, lambdaVal=LAM, data=e, metric="cosine", **kwargs)
        picked = f.maximize(budget=budget, optimizer="LazyGreedy", show_progress=False)
        chosen = [int(i) for i, _ in picked]
    else:
        raise SystemExit(f"unknown impl {impl}")
    seconds = time.perf_counter() - start
    return {"n": n, "impl": impl, "budget": budget, "seconds": seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "objective": graphcut_objective(e, chosen, LAM, "cosine"),
            "objective_shifted_kernel": graphcut_objective(e, chosen, LAM, "shifted"),
            "status": "ok"}


def real_objectives(n: int = 5000) -> list[dict]:
    from submodlib import GraphCutFunction

    from damoc.filtering.base import example_text
    from damoc.filtering.embeddings import embed
    from damoc.filtering.graphcut import graphcut_greedy, graphcut_objective, normalise
    from damoc.tasks import load_task

    texts = [example_text(e) for e in load_task("boolq").train[:n]]
    e = normalise(embed(texts, progress=True))
    budget = n // 10
    rows = []
    start = time.perf_counter()
    ours = graphcut_greedy(e, budget, LAM)
    rows.append({"n": n, "impl": "damoc", "data": "boolq-minilm", "seconds": time.perf_counter() - start,
                 "objective": graphcut_objective(e, ours, LAM, "cosine")})
    start = time.perf_counter()
    kernel = e @ e.T
    f = GraphCutFunction(n=n, mode="dense", lambdaVal=LAM, ggsijs=kernel)
    theirs = [int(i) for i, _ in f.maximize(budget=budget, optimizer="LazyGreedy", show_progress=False)]
    rows.append({"n": n, "impl": "submodlib-dense", "data": "boolq-minilm",
                 "seconds": time.perf_counter() - start, "objective": graphcut_objective(e, theirs, LAM, "cosine"),
                 "submodlib_reported_objective": float(f.evaluate(set(theirs)))})
    rows.append({"n": n, "data": "boolq-minilm", "same_picks": sorted(ours) == sorted(theirs),
                 "overlap": len(set(ours) & set(theirs)) / budget,
                 "objective_gap_relative": (rows[0]["objective"] - rows[1]["objective"]) / abs(rows[1]["objective"])})
    return rows


def real_texts() -> list[str]:
    """The largest set of real texts at hand: every bundled task's training examples."""
    from damoc.filtering.base import example_text
    from damoc.tasks import BUNDLED_TASKS, load_task

    return sorted({example_text(e) for t in BUNDLED_TASKS for e in load_task(t).train})


def real_gap() -> dict:
    """Relaxed against exact greedy on the real MiniLM embeddings of `real_texts` (embedded once
    and cached in damoc's embedding cache; `--embed-only` does that ahead of a timed run)."""
    from damoc.filtering.embeddings import embed
    from damoc.filtering.graphcut import graphcut_greedy, graphcut_objective, normalise

    e = normalise(embed(real_texts(), progress=True))
    budget = len(e) // 10
    out = {"data": "every bundled task's training texts (MiniLM embeddings, duplicates removed)",
           "n": len(e), "budget": budget}
    for mode in ("exact", "relaxed"):
        start = time.perf_counter()
        chosen = graphcut_greedy(e, budget, LAM, exact=mode == "exact")
        out[mode] = {"seconds": time.perf_counter() - start, "objective": graphcut_objective(e, chosen, LAM, "cosine")}
    out["objective_gap_relative"] = (out["exact"]["objective"] - out["relaxed"]["objective"]) / abs(
        out["exact"]["objective"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dense-max", type=int, default=10_000, help="largest N for submodlib's dense mode")
    ap.add_argument("--sparse-max", type=int, default=100_000, help="largest N for submodlib's sparse mode")
    ap.add_argument("--exact-max", type=int, default=100_000, help="largest N for our exact mode")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per case")
    ap.add_argument("--out", type=Path, default=RESULTS / "filter-scale.json")
    ap.add_argument("--impls", help="only these implementations (comma-separated); with --merge")
    ap.add_argument("--merge", action="store_true",
                    help="replace only the rows run now in --out (by n and impl), keep the others with their dates")
    ap.add_argument("--embed-only", action="store_true", help="embed the real texts into the cache and stop")
    args = ap.parse_args()
    if args.embed_only:
        from damoc.filtering.embeddings import embed

        print(embed(real_texts(), progress=True).shape)
        return
    if args.case:
        print(json.dumps(run_case(args.case, args.n)))
        return

    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        impls = ["damoc"]
        if n <= args.exact_max and n > 50_000:
            impls.append("damoc-exact")
        if n <= args.dense_max:
            impls.append("submodlib-dense")
        if n <= args.sparse_max:
            impls.append("submodlib-sparse")
        for impl in impls:
            if args.impls and impl not in args.impls.split(","):
                continue
            print(f"{impl} n={n} ...", flush=True)
            try:
                row = child_json(__file__, "--case", impl, "--n", str(n), timeout=args.timeout)
            except subprocess.CalledProcessError as e:
                tail = (e.stderr or "").strip().splitlines()[-1:] or [""]
                row = {"n": n, "impl": impl, "status": f"failed (exit {e.returncode}): {tail[0][:200]}"}
            except subprocess.TimeoutExpired:
                row = {"n": n, "impl": impl, "status": f"timeout after {args.timeout} s"}
            row |= {"measured": time.strftime("%Y-%m-%d"), "load_average_before": os.getloadavg()[0]}
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.merge:
        old = read_json(args.out)
        fresh = {(r["n"], r["impl"]) for r in rows}
        merged = [r for r in old["rows"] if (r["n"], r["impl"]) not in fresh] + rows
        old |= {"rows": sorted(merged, key=lambda r: (r["n"], r["impl"])), "real_embeddings_gap": real_gap(),
                "versions_latest": envelope()["versions"], "command_latest": command()}
        print(json.dumps(old["real_embeddings_gap"]), flush=True)
        write_json_atomic(args.out, old)
        plot(old["rows"], args.out.with_suffix(".png"))
        return
    real = real_objectives()
    for r in real:
        print(json.dumps(r), flush=True)
    result = envelope(benchmark="filter-scale", lam=LAM, dim=DIM, budget_rate=0.1, seed=0, rows=rows,
                      real_embeddings=real)
    result["versions"]["submodlib-py"] = _version("submodlib-py")
    result["command"] = command()
    write_json_atomic(args.out, result)
    plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")


def _version(pkg: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def plot(rows: list[dict], path: Path) -> None:
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4))
    for impl in sorted({r["impl"] for r in rows}):
        ok = sorted((r for r in rows if r["impl"] == impl and r["status"] == "ok"), key=lambda r: r["n"])
        if not ok:
            continue
        axes[0].plot([r["n"] for r in ok], [r["seconds"] for r in ok], "o-", label=impl)
        axes[1].plot([r["n"] for r in ok], [r["peak_mb"] for r in ok], "o-", label=impl)
    axes[0].axhline(300, color="grey", lw=0.8, ls="--", label="target at 1M: 300 s")
    axes[1].axhline(4096, color="grey", lw=0.8, ls="--", label="target at 1M: 4 GB")
    for ax, title in zip(axes, ["seconds (budget 10%)", "peak memory, MB (embeddings included)"]):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (random 384-d unit vectors)")
        ax.set_title(title)
        ax.legend()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
