"""Benchmark: layer pruning of the bundled models, and which merge keeps the most.

Part 1 (`prune-bundled.json`): for SmolLM2-135M-Instruct and Gemma3-270M, layer similarity on
32 PubMedQA training prompts, the layers removed at thresholds 0.80 / 0.85 / 0.90 (at most 25%),
and perplexity on held-out text (48 PubMedQA *test* prompts, 256 tokens) before and after
pruning with `none` and `difference` merges.

Part 3 (`prune-difference-scale.json`): the `difference` merge at scales 0 to 1 on both
models, same removed layers as part 1 at threshold 0.85.

Part 4 (`prune-similarity-overhead.json`): the similarity pass's time over a plain forward pass
of the same model body on the same texts (target <= 1.2).

Part 2 (`prune-merge-gemma.json`): the sparse merge needs a pre-trained / fine-tuned pair. The
pre-trained weights are bundled Gemma3-270M; the fine-tuned ones are made here by a short full
fine-tune on Alpaca examples (../shared/data/alpaca-1k). The fine-tuned model is pruned at
threshold 0.85 (25% cap) with `none`, `difference` and `sparse` at several densities, and each
is scored on held-out Alpaca examples right after pruning and after one short epoch of LoRA
recovery on the fine-tuning examples.

    .venv/bin/python bench/prune.py                 # both parts, ~40 min on 2 CPU cores
    .venv/bin/python bench/prune.py --part 1
    .venv/bin/python bench/prune.py --part 4        # P4's cost vs a plain forward pass (idle machine)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import time
from pathlib import Path

from _common import BUNDLED, RESULTS, ROOT, command, envelope, pyplot, save_figure, write_json_atomic

SHARED = ROOT.parent.parent / "shared" / "data"
THRESHOLDS = [0.80, 0.85, 0.90]


def pubmedqa_texts(split: str, n: int, seed: int) -> list[str]:
    from damoc.layers.calibration import example_texts
    from damoc.tasks import load_task

    examples = getattr(load_task("pubmedqa"), split)
    return example_texts(random.Random(seed).sample(examples, n))


def alpaca_examples() -> list:
    from damoc.tasks.base import render

    rows = json.loads((SHARED / "alpaca-1k" / "alpaca_data_1k.json").read_text())
    return [render("instruction", id=f"alpaca-{i}", instruction=r["instruction"], context=r.get("input", ""),
                   answer=r["output"]) for i, r in enumerate(rows) if r["output"].strip()]


def part1(args) -> dict:
    from damoc.evaluation import perplexity
    from damoc.layers import PruneConfig, choose_layers, layer_similarity
    from damoc.layers.prune import apply_removal
    from damoc.models import load_model, load_tokenizer

    calib = pubmedqa_texts("train", 32, args.seed)
    heldout = pubmedqa_texts("test", 48, args.seed)
    out = {}
    for spec in BUNDLED:
        tok, model = load_tokenizer(spec), load_model(spec).eval()
        start = time.perf_counter()
        sim = layer_similarity(model, tok, calib)
        sim_seconds = time.perf_counter() - start
        ppl0 = perplexity(model, tok, heldout, desc=f"{spec} ppl")
        rows = []
        for thr in THRESHOLDS:
            removed = choose_layers(sim, thr, 0.25)
            for merge in ("none", "difference"):
                m = copy.deepcopy(model)
                apply_removal(m, removed, PruneConfig(threshold=thr, merge=merge))
                ppl = perplexity(m, tok, heldout, desc=f"{spec} {thr} {merge}")
                rows.append({"threshold": thr, "merge": merge, "removed": removed,
                             "layers_after": len(sim) - len(removed),
                             "perplexity": ppl, "perplexity_ratio": ppl / ppl0})
                print(json.dumps({"model": spec, **rows[-1]}), flush=True)
                del m
        out[spec] = {"layers": len(sim), "similarity": sim.tolist(), "similarity_seconds": sim_seconds,
                     "inner_layers_at_or_above": {str(t): int(sum(s >= t for s in sim[1:-1])) for t in THRESHOLDS},
                     "perplexity_unpruned": ppl0, "rows": rows}
        del model
    return {"calibration": "32 PubMedQA training prompts", "heldout": "48 PubMedQA test prompts, 256 tokens",
            "max_fraction": 0.25, "models": out}


def part2(args) -> dict:
    from damoc.evaluation import perplexity
    from damoc.finetune import FinetuneConfig, finetune
    from damoc.layers import PruneConfig, choose_layers, layer_similarity
    from damoc.layers.calibration import example_texts
    from damoc.layers.prune import apply_removal
    from damoc.models import load_model, load_tokenizer

    spec = "bundled:gemma3-270m"
    examples = alpaca_examples()
    rng = random.Random(args.seed)
    rng.shuffle(examples)
    train, heldout = examples[:args.train], example_texts(examples[-48:])
    tok, base = load_tokenizer(spec), load_model(spec).eval()
    ppl_base = perplexity(base, tok, heldout, desc="base ppl")
    tuned = copy.deepcopy(base)
    # A learning rate above the full-fine-tuning default, so the task vector is large enough to matter.
    ft = FinetuneConfig(method="full", epochs=1, max_seq_len=256, batch_size=8, micro_batch_size=4,
                        learning_rate=1e-4, seed=args.seed)
    tuned, ft_stats = finetune(tuned, tok, train, ft, progress=True)
    tuned.eval()
    ppl_tuned = perplexity(tuned, tok, heldout, desc="tuned ppl")
    print(json.dumps({"ppl_base": ppl_base, "ppl_tuned": ppl_tuned}), flush=True)
    sim = layer_similarity(tuned, tok, example_texts(train[:32]))
    removed = choose_layers(sim, 0.85, 0.25)
    variants = [("none", {}), ("difference", {})] + [("sparse", {"density": d}) for d in args.densities]
    rows = []
    for merge, extra in variants:
        config = PruneConfig(threshold=0.85, merge=merge, seed=args.seed, **extra)
        m = copy.deepcopy(tuned)
        b = copy.deepcopy(base) if merge == "sparse" else None
        start = time.perf_counter()
        apply_removal(m, removed, config, b)
        merge_seconds = time.perf_counter() - start
        del b
        ppl_pruned = perplexity(m, tok, heldout, desc=f"{merge} {extra}")
        rec = FinetuneConfig(method="lora", epochs=1, max_seq_len=256, batch_size=8, micro_batch_size=4,
                             seed=args.seed)
        m, rec_stats = finetune(m, tok, train, rec, progress=True)
        m.eval()
        ppl_rec = perplexity(m, tok, heldout, desc=f"{merge} {extra} recovered")
        rows.append({"merge": merge, **extra, "merge_seconds": merge_seconds, "perplexity_pruned": ppl_pruned,
                     "perplexity_recovered": ppl_rec, "recovery_seconds": rec_stats.train_seconds})
        print(json.dumps(rows[-1]), flush=True)
        del m
    return {"model": spec, "finetune": {"examples": len(train), "config": ft.model_dump(),
                                        "seconds": ft_stats.train_seconds, "last_loss": ft_stats.last_loss},
            "heldout": "48 held-out Alpaca examples (prompt + response), 256 tokens",
            "threshold": 0.85, "max_fraction": 0.25, "similarity": sim.tolist(), "removed": removed,
            "perplexity_pretrained": ppl_base, "perplexity_finetuned": ppl_tuned,
            "recovery": "LoRA, 1 epoch on the fine-tuning examples", "rows": rows}


def part3(args) -> dict:
    """The difference merge at smaller scales (scale 1 is LaCo's sum, which several removed
    layers folded into one neighbour can blow up)."""
    from damoc.evaluation import perplexity
    from damoc.layers import PruneConfig, choose_layers, layer_similarity
    from damoc.layers.prune import apply_removal
    from damoc.models import load_model, load_tokenizer

    calib = pubmedqa_texts("train", 32, args.seed)
    heldout = pubmedqa_texts("test", 48, args.seed)
    out = {}
    for spec in BUNDLED:
        tok, model = load_tokenizer(spec), load_model(spec).eval()
        removed = choose_layers(layer_similarity(model, tok, calib), 0.85, 0.25)
        rows = []
        for scale in (0.0, 0.1, 0.25, 0.5, 1.0):
            m = copy.deepcopy(model)
            apply_removal(m, removed, PruneConfig(merge="difference", scale=scale))
            rows.append({"scale": scale, "perplexity": perplexity(m, tok, heldout, desc=f"{spec} scale {scale}")})
            print(json.dumps({"model": spec, **rows[-1]}), flush=True)
            del m
        out[spec] = {"removed": removed, "rows": rows}
    return {"calibration": "32 PubMedQA training prompts", "heldout": "48 PubMedQA test prompts, 256 tokens",
            "threshold": 0.85, "max_fraction": 0.25, "note": "scale 0 is the same as merge none", "models": out}


def part4(args) -> dict:
    """P4's cost: the hooked similarity pass against a plain forward pass of the same model body
    (no output head on either side) over the same calibration texts, batches and tokenization;
    alternated, median of `--repeats`."""
    import statistics

    import torch

    from damoc.evaluation.scoring import right_pad
    from damoc.layers import layer_similarity
    from damoc.models import load_model, load_tokenizer

    calib = pubmedqa_texts("train", 32, args.seed)

    @torch.inference_mode()
    def plain(model, tok, texts, max_len=256, batch_size=8):
        device = next(model.parameters()).device
        for b in range(0, len(texts), batch_size):
            batch = [tok(t, truncation=True, max_length=max_len)["input_ids"] for t in texts[b:b + batch_size]]
            ids, attention = right_pad(batch, 0, device)
            model.base_model(input_ids=ids, attention_mask=attention)

    rows = []
    for spec in BUNDLED:
        tok, model = load_tokenizer(spec), load_model(spec).eval()
        plain(model, tok, calib[:8])  # warm-up
        times = {"similarity": [], "forward": []}
        for _ in range(args.repeats):
            for kind in ("forward", "similarity"):
                start = time.perf_counter()
                plain(model, tok, calib) if kind == "forward" else layer_similarity(model, tok, calib)
                times[kind].append(time.perf_counter() - start)
        sim, fwd = statistics.median(times["similarity"]), statistics.median(times["forward"])
        rows.append({"model": spec, "texts": len(calib), "max_len": 256, "batch_size": 8,
                     "similarity_seconds": sim, "forward_seconds": fwd, "similarity_over_forward": sim / fwd,
                     "all_seconds": times, "torch_threads": torch.get_num_threads(),
                     "load_average": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
        del model
    return {"calibration": "32 PubMedQA training prompts, 256 tokens", "target": "similarity_over_forward <= 1.2",
            "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["1", "2", "3", "4", "all"], default="all")
    ap.add_argument("--repeats", type=int, default=5, help="part 4: timed passes of each kind")
    ap.add_argument("--train", type=int, default=64, help="Alpaca examples for fine-tuning and recovery")
    ap.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.3, 0.6, 1.0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    torch.manual_seed(args.seed)
    meta = envelope(seed=args.seed) | {"command": command()}
    # part 4 is a timing: run it alone on an idle machine
    for part, name, run, plot in (("1", "prune-bundled", part1, plot1), ("2", "prune-merge-gemma", part2, plot2),
                                  ("3", "prune-difference-scale", part3, None),
                                  ("4", "prune-similarity-overhead", part4, None)):
        if args.part == part or (args.part == "all" and part != "4"):
            res = {"benchmark": name, **run(args), **meta}
            write_json_atomic(RESULTS / f"{name}.json", res)
            if plot:
                plot(res, RESULTS / f"{name}.png")


def plot1(res: dict, path: Path) -> None:
    plt = pyplot()
    models = res["models"]
    fig, axes = plt.subplots(2, len(models), figsize=(12, 7))
    for col, (spec, r) in enumerate(models.items()):
        ax = axes[0, col]
        ax.bar(range(r["layers"]), r["similarity"])
        ax.set_ylim(min(0.5, min(r["similarity"]) - 0.05), 1.0)
        for t in THRESHOLDS:
            ax.axhline(t, color="grey", lw=0.6)
        ax.set_title(f"{spec}: cosine(in, out) per layer")
        ax.set_xlabel("layer")
        ax = axes[1, col]
        for merge, marker in (("none", "o-"), ("difference", "s--")):
            rows = [x for x in r["rows"] if x["merge"] == merge]
            ax.plot([x["threshold"] for x in rows], [x["perplexity"] for x in rows], marker, label=merge)
            for x in rows:
                ax.annotate(f"-{len(x['removed'])}", (x["threshold"], x["perplexity"]), fontsize=8)
        ax.axhline(r["perplexity_unpruned"], color="green", lw=0.8, label="unpruned")
        ax.set_yscale("log")
        ax.set_xlabel("threshold (labels: layers removed)")
        ax.set_ylabel("held-out perplexity")
        ax.legend(fontsize=8)
    save_figure(fig, path)


def plot2(res: dict, path: Path) -> None:
    import numpy as np

    plt = pyplot()
    rows = res["rows"]
    names = [r["merge"] + (f" d={r['density']}" if "density" in r else "") for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(x - 0.2, [r["perplexity_pruned"] for r in rows], 0.4, label="right after pruning")
    ax.bar(x + 0.2, [r["perplexity_recovered"] for r in rows], 0.4, label="after 1 epoch LoRA recovery")
    ax.axhline(res["perplexity_finetuned"], color="green", lw=0.8, label="fine-tuned, unpruned")
    ax.set_xticks(x, names)
    ax.set_yscale("log")
    ax.set_ylabel("held-out Alpaca perplexity")
    ax.set_title(f"Gemma3-270M fine-tuned, {len(res['removed'])} layers removed: merges compared")
    ax.legend(fontsize=8)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
