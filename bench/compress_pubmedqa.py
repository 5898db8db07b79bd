"""Benchmark: token compression on PubMedQA training contexts, damoc against LLMLingua.

Both compress the same contexts at the same rate with the same scoring model (bundled
SmolLM2-135M-Instruct); both outputs are judged by the same BERTScore (bundled MiniLM,
rescaled by the same measured baseline) and their ratio counted in the same tokenizer.
LLMLingua 0.2.2 cannot run on transformers 5 (it expects tuple KV caches, LLMLingua issue
#210) and downloads a tiktoken file at start-up: it runs in its own environment with
transformers 4.35.2 (see `--lingua-python`), on a copy of the model folder written for that
release, with the tiktoken look-up replaced by the scoring model's tokenizer
(bench/_llmlingua_runner.py). Without that environment its rows are left out, and the JSON
says so. Also measured: the rescaled BERTScore at a ladder of ratios (what a threshold costs).

    python3 -m venv /tmp/lingua && /tmp/lingua/bin/pip install torch==2.13.0 \\
        && /tmp/lingua/bin/pip install transformers==4.35.2 llmlingua==0.2.2
    .venv/bin/python bench/compress_pubmedqa.py --lingua-python /tmp/lingua/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, command, envelope, pyplot, save_figure, write_json_atomic
from _llmlingua_runner import run_llmlingua

LADDER = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
THRESHOLDS = [0.6, 0.7, 0.8, 0.9]


def stats(x: np.ndarray, thr: float) -> dict:
    return {"mean": float(x.mean()), "p05": float(np.percentile(x, 5)), "median": float(np.median(x)),
            "min": float(x.min()), "share_at_or_above_threshold": float((x >= thr).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="training contexts (seeded sample)")
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--threshold", type=float, default=None, help="default: damoc's (CompressConfig)")
    ap.add_argument("--rewriter", default=None, help="also run the loop with this rewriter (default: none, "
                    "as damoc's default)")
    ap.add_argument("--max-tries", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lingua-python", help="python of an environment with llmlingua 0.2.2 + transformers 4.35")
    ap.add_argument("--out", type=Path, default=RESULTS / "compress-pubmedqa.json")
    ap.add_argument("--plot-only", action="store_true", help="redraw the plot from an existing --out")
    ap.add_argument("--part", choices=["all", "changes"], default="all",
                    help="changes: each speed change of the loop timed on and off (-> compress-changes.json)")
    ap.add_argument("--repeats", type=int, default=3, help="changes: timings per variant (median kept)")
    args = ap.parse_args()
    if args.part == "changes":
        part_changes(args)
        return
    if args.plot_only:
        result = json.loads(args.out.read_text())
        add_derived(result)
        write_json_atomic(args.out, result)
        plot(result, args.out.with_suffix(".png"))
        return

    from damoc.models import prepare_bundled
    from damoc.tasks import load_task
    from damoc.tokens import CompressConfig, compress_examples
    from damoc.tokens.compress import load_components
    from damoc.tokens.dropping import compress_text
    from damoc.tokens.surprisal import token_surprisals

    train = load_task("pubmedqa").train
    examples = random.Random(args.seed).sample(train, args.n)
    texts = [e.context for e in examples]
    config = CompressConfig(ratio=args.ratio, max_tries=args.max_tries, seed=args.seed, rewriter=args.rewriter,
                            **({"threshold": args.threshold} if args.threshold is not None else {}))
    args.threshold = config.threshold
    comps = load_components(config)

    # 1. damoc without rewriting (the compression stage alone), then with the full loop if a rewriter is set.
    plain_cfg = config.model_copy(update={"max_tries": 0})
    plain_comps = comps.__class__(**{**comps.__dict__, "rewriter": None})
    _, _, plain = compress_examples(examples, plain_cfg, plain_comps)
    full = compress_examples(examples, config, comps)[2] if config.rewriter else plain
    print(json.dumps({k: full[k] for k in ("context_token_ratio", "bertscore_before", "bertscore_after",
                                           "share_rewritten", "tokens_per_second")}, indent=1), flush=True)

    # 2. What a threshold costs: rescaled BERTScore along a ladder of ratios.
    bert, count = comps.bert, comps.count_tokenizer
    baseline = bert.baseline(texts, seed=args.seed)
    scored = token_surprisals(comps.scorer_model, comps.scorer_tokenizer, texts)

    def ntok(ts: list[str]) -> int:
        return sum(len(count(t, add_special_tokens=False)["input_ids"]) for t in ts)

    n_orig = ntok(texts)
    ladder = []
    for r in LADDER:
        out = [compress_text(t, s, r) for t, s in zip(texts, scored)]
        f = bert.rescale(bert.raw_f1(out, texts), baseline)
        ladder.append({"ratio_target": r, "ratio_achieved": ntok(out) / n_orig, **stats(f, args.threshold),
                       "share_at_or_above": {str(t): float((f >= t).mean()) for t in THRESHOLDS}})

    # 3. LLMLingua on the same texts, same model, same rate.
    lingua: dict = {"status": "not run: give --lingua-python"}
    if args.lingua_python:
        try:
            res = run_llmlingua(args.lingua_python, prepare_bundled("bundled:smollm2-135m-instruct"), texts,
                                args.ratio)
            f = bert.rescale(bert.raw_f1(res["texts"], texts), baseline)
            lingua = {"status": "ok", "environment": res["versions"], "ratio_achieved": ntok(res["texts"]) / n_orig,
                      "bertscore": stats(f, args.threshold), "seconds": res["seconds"],
                      "tokens_per_second": plain["scorer_tokens"] / res["seconds"],
                      "example": res["texts"][0][:600]}
        except (RuntimeError, OSError, json.JSONDecodeError) as e:
            lingua = {"status": f"failed: {e}"}
    print(json.dumps(lingua, indent=1)[:2000], flush=True)

    result = {
        "benchmark": "compress-pubmedqa", "n": args.n, "seed": args.seed, "config": config.model_dump(),
        "bertscore_baseline_raw": baseline, "original_tokens": n_orig,
        "damoc_no_rewrite": {k: plain[k] for k in ("context_token_ratio", "bertscore_before", "bertscore_after",
                                                    "share_fell_back_milder", "share_fell_back_original",
                                                    "seconds", "tokens_per_second")},
        "damoc": {k: v for k, v in full.items() if k != "config"},
        "damoc_example": {"original": texts[0][:600],
                          "compressed": compress_text(texts[0], scored[0], args.ratio)[:600]},
        **envelope(ladder=ladder, llmlingua=lingua), "command": command(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    add_derived(result)
    write_json_atomic(args.out, result)
    plot(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")


def _pad_share(lengths: list[int], batch: int, by_length: bool) -> float:
    """Share of the positions a batched forward pass computes that are padding."""
    order = sorted(lengths, reverse=True) if by_length else lengths
    chunks = [order[i:i + batch] for i in range(0, len(order), batch)]
    computed = sum(max(c) * len(c) for c in chunks)
    return 1 - sum(lengths) / computed


def part_changes(args: argparse.Namespace) -> None:
    """Each speed change of the loop measured on and off, on the same contexts in the same run
    (variants interleaved, `--repeats` timings each, the median kept): what each one buys."""
    from damoc.tasks import load_task
    from damoc.tokens import CompressConfig, compress_examples
    from damoc.tokens.compress import load_components
    from damoc.tokens.dropping import compress_text
    from damoc.tokens.surprisal import token_surprisals

    examples = random.Random(args.seed).sample(load_task("pubmedqa").train, args.n)
    texts = [e.context for e in examples]
    config = CompressConfig(ratio=args.ratio, max_tries=0, seed=args.seed)
    comps = load_components(config)
    model, tok, bert, batch = comps.scorer_model, comps.scorer_tokenizer, comps.bert, config.batch_size

    def timed(f) -> float:
        t = time.perf_counter()
        f()
        return time.perf_counter() - t

    variants = {
        # damoc sorts the windows by length before batching; calling it on consecutive groups of
        # `batch` texts batches them in the given order instead.
        "surprisal_by_length": lambda: token_surprisals(model, tok, texts, batch_size=batch),
        "surprisal_given_order": lambda: [token_surprisals(model, tok, texts[i:i + batch], batch_size=batch)
                                          for i in range(0, len(texts), batch)],
        # the loop tokenizes each original again to count its tokens (the surprisal pass had them)
        "count_tokens_again": lambda: [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts],
    }
    scored = token_surprisals(model, tok, texts, batch_size=batch)
    first = [compress_text(t, sc, args.ratio) for t, sc in zip(texts, scored)]
    baseline_refs = bert.baseline(texts, seed=args.seed)  # fills the reference cache, as the loop does

    variants["bertscore_refs_cached"] = lambda: bert.raw_f1(first, texts)
    # references embedded again for every round of scoring
    variants["bertscore_refs_embedded_again"] = lambda: bert.raw_f1(first, texts, cache_references=False)
    variants["whole_loop"] = lambda: (bert.clear_cache(),  # cold, as a run starts
                                      compress_examples(examples, config, comps, progress=False))
    token_surprisals(model, tok, texts[:batch], batch_size=batch)  # warm-up: first calls pay for allocation
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for k, f in variants.items():
            seconds[k].append(timed(f))
    med = {k: float(np.median(v)) for k, v in seconds.items()}
    lengths = [sc.n_tokens + 1 for sc in scored]  # + the start token
    n_tokens = sum(sc.n_tokens for sc in scored)
    rows = [
        {"change": "surprisal windows batched by length", "with_seconds": med["surprisal_by_length"],
         "without_seconds": med["surprisal_given_order"],
         "pad_share_with": _pad_share(lengths, batch, True), "pad_share_without": _pad_share(lengths, batch, False)},
        {"change": "reference embeddings cached across scoring rounds", "with_seconds": med["bertscore_refs_cached"],
         "without_seconds": med["bertscore_refs_embedded_again"],
         "note": "per round of scoring; the loop scores once plus once per milder ratio that has failures"},
        {"change": "count tokens from the surprisal pass instead of tokenizing again", "with_seconds": 0.0,
         "without_seconds": med["count_tokens_again"], "note": "not built: the cost measured is what it would save"},
        {"change": "output head only on scored positions", "with_seconds": None, "without_seconds": None,
         "scored_share_of_real_positions": n_tokens / sum(lengths),
         "note": "not built: every context here fits one 512-token window, so every real position but the "
                 "start token is scored; only padding could be skipped, and transformers' logits_to_keep "
                 "selects positions for the whole batch, not per row"},
    ]
    for r in rows:
        if r["with_seconds"] is not None and r["without_seconds"]:
            r["saving_share_of_loop"] = (r["without_seconds"] - r["with_seconds"]) / med["whole_loop"]
    result = {"benchmark": "compress-changes", "n": args.n, "seed": args.seed, "ratio": args.ratio,
              "scorer_tokens": n_tokens, "whole_loop_seconds": med["whole_loop"],
              "whole_loop_tokens_per_second": n_tokens / med["whole_loop"], "rows": rows,
              "all_seconds": seconds, "bertscore_baseline_raw": baseline_refs, "repeats": args.repeats,
              "load_average": os.getloadavg(), **envelope(),
              "command": command(),  # (it recorded "--part changes" twice before)
              "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_json_atomic(RESULTS / "compress-changes.json", result)
    print(json.dumps(rows, indent=1))


def add_derived(result: dict) -> None:
    """Throughput of scoring + word dropping alone: what LLMLingua's timing covers (no meaning check)."""
    plain = result["damoc_no_rewrite"]
    sec = plain["seconds"]
    plain["tokens_per_second_compression_only"] = result["damoc"]["scorer_tokens"] / (sec["surprisal"] + sec["prune"])


def plot(result: dict, path: Path) -> None:
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4))
    lad = result["ladder"]
    ax = axes[0]
    ax.plot([r["ratio_achieved"] for r in lad], [r["mean"] for r in lad], "o-", label="damoc, mean")
    ax.plot([r["ratio_achieved"] for r in lad], [r["p05"] for r in lad], "s--", label="damoc, 5th percentile")
    ling = result["llmlingua"]
    if ling.get("status") == "ok":
        ax.plot([ling["ratio_achieved"]], [ling["bertscore"]["mean"]], "r*", ms=12, label="LLMLingua 0.2.2, mean")
    ax.axhline(result["config"]["threshold"], color="grey", lw=0.8)
    ax.set_xlabel("tokens kept (share of original)")
    ax.set_ylabel("rescaled BERTScore F1")
    ax.set_title("meaning kept vs tokens kept (PubMedQA)")
    ax.legend(fontsize=8)
    ax = axes[1]
    plain = result["damoc_no_rewrite"]
    names = ["damoc\nscore + drop", "damoc\n+ BERTScore gate"]
    speeds = [plain["tokens_per_second_compression_only"], plain["tokens_per_second"]]
    if result["config"].get("rewriter"):
        names.append("damoc\n+ rewriting")
        speeds.append(result["damoc"]["tokens_per_second"])
    if ling.get("status") == "ok":
        names.append("LLMLingua\n(no check)")
        speeds.append(ling["tokens_per_second"])
    ax.bar(names, speeds)
    ax.set_ylabel("input tokens per second (2 CPU cores)")
    ax.set_title("throughput")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
