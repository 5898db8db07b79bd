"""Benchmark: does `damoc estimate` predict what the zoo's runs measured, and what does it predict
at the paper's scale?

Validation (what can fail): for every training run of the zoo, the full fine-tuning of the truth
(bench/results/zoo/TASK/*.json) and every compressed candidate of every `select` row (read from
the rows' run folders, ../runs/zoo/TASK/rows/NAME/results.json, which are not committed), the
tokens `damoc.selection.estimate` predicts from the data and the settings alone, before running,
against the tokens the run trained on; and its seconds: the predicted FLOPs over a throughput
(training FLOP/s) calibrated on the other runs of the same model and method, leave one out,
against the measured training seconds (these runs were made under different loads; each row
carries its load where the run recorded it). The data stage is checked the same way (the
embedder's and the scorer's tokens). FLOPs follow from tokens by damoc.flops' formula, so they
are no separate test.

Paper scale: eight 7-9B hub candidates (from the packaged catalog) with LoRA, on PubMedQA's
token lengths (bundled; its contexts are long, which is where token compression pays) at 10k
and 100k examples, at damoc's defaults. With bench/results/gpu-throughput.json (measured by
bench/gpu_throughput.py on a GPU) it adds hours.

    .venv/bin/python bench/cost_model.py      # -> bench/results/cost-model.json and cost-model.png
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from _common import RESULTS, ROOT, RUNS, envelope, pyplot, read_json, save_figure, write_json_atomic

from damoc.compat import graphcut_pool_as_ran
from damoc.selection import Candidate
from damoc.selection.config import SelectConfig
from damoc.selection.estimate import estimate
from damoc.selection.runner import select_examples
from damoc.selection.shapes import shape
from damoc.tasks import load_task

PAPER_MODELS = ["meta-llama/Llama-3.1-8B", "mistralai/Mistral-7B-v0.3", "Qwen/Qwen2.5-7B", "Qwen/Qwen3-8B",
                "google/gemma-2-9b", "01-ai/Yi-1.5-9B", "internlm/internlm2_5-7b", "deepseek-ai/deepseek-llm-7b-base"]
TOKENS_TARGET, SECONDS_TARGET = 0.10, 0.30


def _train(config: SelectConfig) -> list:
    return select_examples(load_task(config.task, config.data), config, quiet=True)[0]


def truth_runs() -> list[dict]:
    """Full fine-tuning rows of the zoo's truths: predicted on the full route."""
    rows = []
    for path in sorted(RESULTS.glob("zoo/*/*.json")):
        measured = read_json(path)
        cand = Candidate(model=measured["model"], method=measured["method"])
        config = SelectConfig(**{**graphcut_pool_as_ran(measured["config"]), "candidates": [cand]})
        predicted = estimate(config, _train(config))["candidates"][0]["full"]
        rows.append({"run": f"{config.task}/truth/{cand.name.removeprefix('bundled:')}", "route": "full",
                     "task": config.task, "model": cand.model, "method": cand.method,
                     "predicted_tokens": predicted["tokens"], "measured_tokens": measured["train_tokens"],
                     "predicted_flops": predicted["flops"], "measured_flops": measured["train_flops"],
                     "measured_seconds": measured["train_seconds"],
                     "load_average": measured.get("load_average_at_end")})
    return rows


def damoc_runs() -> tuple[list[dict], list[dict]]:
    """Compressed candidates of every zoo row whose run folder is here, and each row's data stage."""
    rows, data_rows = [], []
    for path in sorted(RESULTS.glob("zoo-*.json")):
        if path.name.startswith("zoo-pilot-"):
            continue
        zoo = read_json(path)
        for setting in zoo.get("rows", []):
            folder = RUNS / "zoo" / setting["task"] / "rows" / setting["name"]
            if not (folder / "results.json").exists():
                continue
            run = read_json(folder / "results.json")
            config = SelectConfig(**graphcut_pool_as_ran(setting["config"]))
            if config.strategy != "fixed":  # the estimate prices the fixed strategy only
                continue
            train = _train(config)
            predicted = estimate(config, train)
            by_name = {(r["model"], r["method"]): r for r in predicted["candidates"]}
            for c in run["candidates"]:
                if c.get("status") != "ok":
                    continue
                p = by_name[(c["model"], c["method"])]
                rows.append({"run": f"{setting['task']}/{setting['name']}/{c['model'].removeprefix('bundled:')} "
                                    f"{c['method']}", "route": "damoc", "task": setting["task"],
                             "model": c["model"], "method": c["method"],
                             "predicted_tokens": p["damoc"]["tokens"], "measured_tokens": c["train"]["train_tokens"],
                             "predicted_flops": p["damoc"]["flops"], "measured_flops": c["train_flops"],
                             "measured_seconds": c["train_seconds"], "load_average": setting.get("load_average")})
            data_rows += _data_stage_rows(setting, run["data"], predicted)
    return rows, data_rows


def _data_stage_rows(setting: dict, measured: dict, predicted: dict) -> list[dict]:
    out, run = [], f"{setting['task']}/{setting['name']}"
    config = setting["config"]
    if config.get("filter") and "embedder" in predicted["data"].get("filter_tokens", {}) \
            and measured["filter"]["forward_flops"]:  # 0: an early run that did not record its cost
        embedder = config["filter"]["options"].get("embedder", "bundled:minilm")
        tokens = measured["filter"]["forward_flops"] / (2.0 * shape(embedder, causal=False).matmul)
        out.append({"run": f"{run}/filter embedder", "predicted_tokens": predicted["data"]["filter_tokens"]["embedder"],
                    "measured_tokens": tokens})
    if config.get("compress") and "compress" in measured:
        out.append({"run": f"{run}/compression scorer", "predicted_tokens": predicted["data"]["scorer_context_tokens"],
                    "measured_tokens": measured["compress"]["scorer_tokens"]})
    return out


def with_seconds(rows: list[dict], rule: str, key: str) -> None:
    """Predicted seconds from the other runs of the same model and method (leave one out), as a
    user would calibrate on their earlier runs. `throughput`: predicted FLOPs over their median
    FLOP/s. `affine`: a least-squares line seconds = fixed + FLOPs / throughput through them,
    since a short run pays a fixed start (optimizer, data loader) that FLOPs do not see."""
    import numpy as np

    for i, r in enumerate(rows):
        others = [o for j, o in enumerate(rows) if j != i and o["measured_seconds"] > 0
                  and (o["model"], o["method"]) == (r["model"], r["method"])]
        r[f"{key}_calibration_runs"] = len(others)
        if rule == "throughput" and others:
            r[key] = r["predicted_flops"] / statistics.median(o["measured_flops"] / o["measured_seconds"]
                                                             for o in others)
        elif rule == "affine" and len(others) >= 2:
            slope, fixed = np.polyfit([o["measured_flops"] for o in others], [o["measured_seconds"] for o in others], 1)
            r[key] = float(fixed + slope * r["predicted_flops"])
        else:
            r[key] = None


def errors(rows: list[dict], key: str, measured: str | None = None) -> list[float]:
    measured = measured or key
    return [r[f"predicted_{key}"] / r[f"measured_{measured}"] - 1 for r in rows
            if r.get(f"predicted_{key}") is not None and r[f"measured_{measured}"]]


def describe(errs: list[float], target: float) -> dict:
    if not errs:
        return {"runs": 0}
    worst = max(errs, key=abs)
    return {"runs": len(errs), "median_abs_error": statistics.median(abs(e) for e in errs),
            "worst_error": worst, "within_target": sum(abs(e) <= target for e in errs), "target": target,
            "met": all(abs(e) <= target for e in errs)}


def paper_scale(throughput: dict | None) -> list[dict]:
    task = "pubmedqa"
    out = []
    for n in (10_000, 100_000):
        config = SelectConfig(task=task, candidates=[Candidate(model=m, method="lora") for m in PAPER_MODELS],
                              finetune={"max_seq_len": 512})
        e = estimate(config, _train(config), n_examples=n,
                     throughput=throughput["flops_per_second"] if throughput else None)
        out.append({"examples": n, "task_lengths": task, "max_seq_len": 512, "method": "lora",
                    "candidates": PAPER_MODELS, "full_flops": e["full_flops"],
                    "damoc_flops": e["damoc_train_flops"] + e["damoc_overhead_flops"],
                    "speedup_flops": e["speedup_flops"],
                    "speedup_flops_training_only": e["speedup_flops_training_only"],
                    "data_stage_flops_share": e["data_stage_flops_share"],
                    "full_hours": e.get("full_hours"), "damoc_hours": e.get("damoc_hours"),
                    "per_candidate": [{"candidate": r["model"], "layers_removed": r["layers_removed"],
                                       "full_tokens": r["full"]["tokens"], "damoc_tokens": r["damoc"]["tokens"],
                                       "full_flops": r["full"]["flops"], "damoc_flops": r["damoc"]["flops"]}
                                      for r in e["candidates"]],
                    "notes": e["notes"]})
    return out


def plot(rows: list[dict], path: Path) -> None:
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4.5))
    for ax, key, target in ((axes[0], "tokens", TOKENS_TARGET), (axes[1], "seconds", SECONDS_TARGET)):
        for route, marker in (("full", "o"), ("damoc", "^")):
            pts = [(r[f"measured_{key}"], r[f"predicted_{key}"]) for r in rows
                   if r["route"] == route and r.get(f"predicted_{key}")]
            if pts:
                ax.scatter(*zip(*pts), marker=marker, label=f"{route} runs", alpha=0.7)
        lo = min(min(r[f"measured_{key}"] for r in rows), min(r[f"predicted_{key}"] or 1e9 for r in rows))
        hi = max(max(r[f"measured_{key}"] for r in rows), max(r[f"predicted_{key}"] or 0 for r in rows))
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        for f in (1 - target, 1 + target):
            ax.plot([lo, hi], [lo * f, hi * f], "k:", lw=0.8)
        ax.set(xscale="log", yscale="log", xlabel=f"measured {key}", ylabel=f"predicted {key}",
               title=f"training {key} (dotted: +-{target:.0%})")
        ax.legend()
    save_figure(fig, path)


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    rows = truth_runs()
    cheap, data_rows = damoc_runs()
    rows += cheap
    with_seconds(rows, "throughput", "predicted_seconds")
    with_seconds(rows, "affine", "predicted_seconds_affine")
    gpu = RESULTS / "gpu-throughput.json"
    throughput = read_json(gpu)["rows"][0] if gpu.exists() else None
    result = {
        "rows": rows, "data_stage_rows": data_rows,
        "tokens": describe(errors(rows, "tokens"), TOKENS_TARGET),
        "tokens_by_route": {route: describe(errors([r for r in rows if r["route"] == route], "tokens"), TOKENS_TARGET)
                            for route in ("full", "damoc")},
        "seconds": describe(errors(rows, "seconds"), SECONDS_TARGET),
        "seconds_by_route": {route: describe(errors([r for r in rows if r["route"] == route], "seconds"),
                                             SECONDS_TARGET) for route in ("full", "damoc")},
        "seconds_affine": describe(errors(rows, "seconds_affine", "seconds"), SECONDS_TARGET),
        # Why seconds miss: the same model and method ran at very different FLOP/s (load, batch, length).
        "measured_flops_per_second": {f"{m} {meth}": sorted(r["measured_flops"] / r["measured_seconds"] for r in rows
                                                           if (r["model"], r["method"]) == (m, meth))
                                      for m, meth in sorted({(r["model"], r["method"]) for r in rows})},
        "data_stage_tokens": describe(errors(data_rows, "tokens"), TOKENS_TARGET),
        "paper_scale": paper_scale(throughput), "throughput_source": str(gpu.relative_to(ROOT.parent)) if throughput
        else None,
        **envelope(), "command": "python bench/cost_model.py"}
    write_json_atomic(RESULTS / "cost-model.json", result)
    plot(rows, RESULTS / "cost-model.png")
    for key in ("tokens", "seconds", "seconds_affine", "data_stage_tokens"):
        print(key, result[key])
    for p in result["paper_scale"]:
        print(f"{p['examples']} examples: {p['speedup_flops']:.1f}x FLOPs ({p['speedup_flops_training_only']:.1f}x "
              f"training only), data stage {p['data_stage_flops_share']:.1%}")


if __name__ == "__main__":
    main()
