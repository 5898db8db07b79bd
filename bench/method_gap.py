"""Benchmark, from the zoo's result files only (no training): is a full fine-tune's lead on the compressed
route evidence, and would spending twice the training on two replicate runs buy a better pick than spending
it on twice the data?

Every pick outside the truth's tie set in the zoo is a full fine-tune. Two cheap fixes come to mind, and
the rows already hold what it takes to judge both before building either:

- **Method gap**: for each task and model, the truth's gap between full fine-tuning and the model's best
  PEFT method (on 1,000 examples, two seeds) beside the same gap on each run of damoc's defaults (100
  examples). Where the truth separates the two (|gap| beyond 2 SE, both noises), does the compressed gap
  carry its sign? If it does not, no correction that reads the compressed gap can be right.
- **Replicates at equal budget**: the mean of two runs at 5% of the data (rows that differ only in their
  sample or run seed) against one run at 10% (the defaults at each run seed): about the same training
  FLOPs. The pair's pick is its best candidate by the mean of the two runs' bits per byte. The same is
  done for pairs of 10% runs, to see what replicating the defaults would buy at twice their cost.
- **Pair errors**: which of the pairs the truth separates the defaults order wrong over their runs, by kind
  (two methods of one model or two models; with IA3 or without), beside the free guesses on the same pairs:
  where the compressed route's information is worth having, and where it is not.

    .venv/bin/python bench/method_gap.py     # writes results/method-gap.json
"""

from __future__ import annotations

import itertools
import math

from _common import RESULTS, RUN_SEEDS, envelope, read_json, route_flops, write_json_atomic

# the defaults (10% of the data), one run each: at run seed 0 and at the other run seeds
DEFAULTS = ["headline", *(f"headline-seed{s}" for s in RUN_SEEDS)]
HALF_PAIRS = {"random-0.05": ("random-0.05", "random-0.05-draw1"),  # 5% of the data, two runs each
              "graphcut-0.05": ("graphcut-0.05", "graphcut-0.05-seed1")}
K = 2.0  # the truth's tie line, in SE
GUESSES = ("zero-shot", "size")  # rows that are free guesses, not damoc's runs


def _bpb(row: dict) -> dict[str, float]:
    return {name: m["answer_bpb"] for name, m in row["metrics"].items()}


def _pair_se(truth: dict, a: str, b: str) -> float:
    for p in truth["pairs"]:
        if {p["a"], p["b"]} == {a, b}:
            return p["bpb_diff_se"]
    raise KeyError(f"the truth has no pair {a} / {b}")


def method_gaps(task: str, zoo: dict) -> list[dict]:
    """Per model: full fine-tuning minus the best PEFT method, in the truth and on each default run."""
    truth, rows = zoo["truth"], {r["name"]: r for r in zoo["rows"]}
    truth_bpb = {n: m["answer_bpb"] for n, m in truth["metrics"].items()}
    out = []
    for model in sorted({n.rsplit(" ", 1)[0] for n in truth_bpb}):
        peft = [n for n in truth_bpb if n.startswith(model + " ") and not n.endswith(" full")]
        full = f"{model} full"
        best = min(peft, key=truth_bpb.get)
        gap, se = truth_bpb[full] - truth_bpb[best], _pair_se(truth, full, best)
        runs = {}
        for name in DEFAULTS:
            if name in rows:
                b = _bpb(rows[name])
                runs[name] = b[full] - min(b[n] for n in peft)
        separated = abs(gap) > K * se
        out.append({"task": task, "model": model, "truth_best_peft": best.rsplit(" ", 1)[1],
                    "truth_gap": gap, "truth_gap_se": se, "truth_separates": separated,
                    "compressed_gaps": runs,
                    "same_sign": {n: (g > 0) == (gap > 0) for n, g in runs.items()} if separated else None})
    return out


def full_picks(task: str, zoo: dict) -> list[dict]:
    """Every damoc row whose pick is a full fine-tune, beside what following `select`'s lighter-method line
    would have picked: the same model's best other method on that row's run (by its bits per byte)."""
    tie = set(zoo["truth"]["tie_set"])
    out = []
    for r in zoo["rows"]:
        if (r["name"] in GUESSES or r["name"].startswith("no-budget")  # no-budget: a headline run's candidates again
                or not r.get("chosen", "").endswith(" full") or not r.get("metrics")):
            continue
        model = r["chosen"].rsplit(" ", 1)[0]
        b = _bpb(r)
        lighter = min((n for n in b if n.startswith(model + " ") and not n.endswith(" full")), key=b.get)
        out.append({"task": task, "row": r["name"], "pick": r["chosen"], "pick_in_tie_set": r["in_tie_set"],
                    "lighter": lighter, "lighter_in_tie_set": lighter in tie})
    return out


def _pick(bpbs: list[dict[str, float]]) -> str:
    mean = {n: sum(b[n] for b in bpbs) / len(bpbs) for n in bpbs[0]}
    return min(mean, key=mean.get)


def replicates(task: str, zoo: dict) -> dict:
    """One run's pick against the mean of two runs' pick, judged by the truth's tie set."""
    tie, rows = set(zoo["truth"]["tie_set"]), {r["name"]: r for r in zoo["rows"]}
    singles = [{"row": n, "in_tie_set": rows[n]["in_tie_set"], "pick": rows[n]["chosen"],
                "train_flops": route_flops(rows[n]["flops"])} for n in DEFAULTS if n in rows]
    pairs = []
    groups = [(name, pair) for name, pair in HALF_PAIRS.items()]
    groups += [(f"{a}+{b}", (a, b)) for a, b in itertools.combinations([n for n in DEFAULTS if n in rows], 2)]
    for name, pair in groups:
        if not all(p in rows for p in pair):
            continue
        pick = _pick([_bpb(rows[p]) for p in pair])
        pairs.append({"pair": name, "rows": list(pair), "share": "5%" if name in HALF_PAIRS else "10%",
                      "pick": pick, "in_tie_set": pick in tie,
                      "single_in_tie_set": [rows[p]["in_tie_set"] for p in pair],
                      "train_flops": sum(route_flops(rows[p]["flops"]) for p in pair)})
    return {"task": task, "tie_set": sorted(tie), "singles_10": singles, "pairs": pairs}


def pair_kind(a: str, b: str) -> str:
    """A pair of candidates as the zoo's errors fall: two methods of one model or two models, with IA3 or not."""
    (model_a, method_a), (model_b, method_b) = a.rsplit(" ", 1), b.rsplit(" ", 1)
    return (f"{'method' if model_a == model_b else 'model'} pair, "
            f"{'with' if 'ia3' in (method_a, method_b) else 'without'} IA3")


KINDS = [f"{one} pair, {ia3} IA3" for one in ("method", "model") for ia3 in ("with", "without")]


def pair_errors(task: str, zoo: dict) -> dict:
    """Every pair the truth separates, judged on each run of the defaults and on each free guess as the rows
    judge them (right when ranked the truth's way, half where the ranking ties them), by kind; and the pairs
    the defaults missed, with how many of their runs missed each."""
    truth, rows = zoo["truth"], {r["name"]: r for r in zoo["rows"]}
    separated = [(p["a"], p["b"], p["bpb_diff"] < 0) for p in truth["pairs"]
                 if abs(p["bpb_diff"]) > K * p["bpb_diff_se"]]

    def judged(ranks: dict[str, int]) -> dict[tuple, float]:
        return {(a, b): 0.5 if ranks[a] == ranks[b] else float((ranks[a] < ranks[b]) == a_better)
                for a, b, a_better in separated if a in ranks and b in ranks}  # as judge: a failed one is left out

    def by_kind(scores: list[dict[tuple, float]]) -> dict:
        out = {k: {"judged": 0, "right": 0.0} for k in KINDS}
        for score in scores:
            for (a, b), right in score.items():
                kind = out[pair_kind(a, b)]
                kind["judged"] += 1
                kind["right"] += right
        return out

    runs = [judged(rows[n]["ranks"]) for n in DEFAULTS if n in rows]
    missed = []
    for a, b, a_better in separated:
        wrong = sum(r.get((a, b), 1.0) < 1 for r in runs)  # a pair a run could not judge is not missed
        if wrong:
            better, worse = (a, b) if a_better else (b, a)
            missed.append({"pair": f"{better} > {worse}", "kind": pair_kind(a, b), "runs_missed": wrong,
                           "runs": len(runs)})
    return {"task": task, "runs": len(runs), "kinds": by_kind(runs),
            "guesses": {g: by_kind([judged(rows[g]["ranks"])]) for g in GUESSES if g in rows},
            "missed": sorted(missed, key=lambda m: (-m["runs_missed"], m["pair"]))}


def _pooled(parts: list[dict]) -> dict:
    out = {}
    for k in KINDS:
        judged, right = sum(p[k]["judged"] for p in parts), sum(p[k]["right"] for p in parts)
        out[k] = {"judged": judged, "right": right, "rate": right / judged if judged else None}
    return out


def _rate(flags: list[bool]) -> dict:
    return {"yes": sum(flags), "of": len(flags), "rate": sum(flags) / len(flags) if flags else None}


def fisher_greater(a: dict, b: dict) -> float | None:
    """One-sided Fisher exact p that `a`'s rate exceeds `b`'s by chance alone (hypergeometric tail): small
    counts like these decide little, and the page should say how little."""
    n1, n2, hits = a["of"], b["of"], a["yes"] + b["yes"]
    if not n1 or not n2:
        return None
    total = math.comb(n1 + n2, n1)
    return sum(math.comb(hits, k) * math.comb(n1 + n2 - hits, n1 - k)
               for k in range(a["yes"], min(n1, hits) + 1)) / total


def study() -> dict:
    """Everything the result file holds but its envelope, from the zoo files as they stand."""
    files = sorted(p for p in RESULTS.glob("zoo-*.json") if not p.name.startswith("zoo-pilot-"))
    zoos = {p.stem.removeprefix("zoo-"): z for p in files if (z := read_json(p)).get("truth", {}).get("pairs")}
    gaps = [g for t, z in zoos.items() for g in method_gaps(t, z)]
    reps = [replicates(t, z) for t, z in zoos.items()]
    signs = [s for g in gaps if g["same_sign"] for s in g["same_sign"].values()]
    halves = [p for r in reps for p in r["pairs"] if p["share"] == "5%"]
    flops = {"one run at 10%": [s["train_flops"] for r in reps for s in r["singles_10"]],
             "two runs at 5%": [p["train_flops"] for p in halves]}
    one_10, two_5 = _rate([s["in_tie_set"] for r in reps for s in r["singles_10"]]), _rate([p["in_tie_set"]
                                                                                          for p in halves])
    rows = [r for z in zoos.values() for r in z["rows"] if r["name"] in DEFAULTS]
    errors = [pair_errors(t, z) for t, z in zoos.items()]
    by_kind = _pooled([e["kinds"] for e in errors])
    wrong = {k: v["judged"] - v["right"] for k, v in by_kind.items()}
    fulls = [f for t, z in zoos.items() for f in full_picks(t, z)]
    summary = {
        "method_gap_sign_agreement": _rate(signs),
        "separated_model_tasks": [f"{g['task']} {g['model']}" for g in gaps if g["truth_separates"]],
        "one_run_10": one_10, "two_runs_5_mean": two_5,
        "two_runs_5_mean_by_filter": {f: _rate([p["in_tie_set"] for p in halves if p["pair"] == f"{f}-0.05"])
                                      for f in ("random", "graphcut")},
        "one_run_10_over_two_runs_5_fisher_p": fisher_greater(one_10, two_5),
        "one_run_5": _rate([x for p in halves for x in p["single_in_tie_set"]]),
        "two_runs_10_mean": _rate([p["in_tie_set"] for r in reps for p in r["pairs"] if p["share"] == "10%"]),
        "train_flops_range": {k: [min(v), max(v)] for k, v in flops.items() if v},
        "full_picks_in_tie_set": _rate([f["pick_in_tie_set"] for f in fulls]),
        "full_picks_lighter_in_tie_set": _rate([f["lighter_in_tie_set"] for f in fulls]),
        # following the line: picks it would lose (full in, lighter out) and win (full out, lighter in)
        "full_picks_lost_by_lighter": sum(f["pick_in_tie_set"] and not f["lighter_in_tie_set"] for f in fulls),
        "full_picks_won_by_lighter": sum(f["lighter_in_tie_set"] and not f["pick_in_tie_set"] for f in fulls),
        "truth_full_strictly_best_tasks": [t for t, z in zoos.items() if z["truth"]["tie_set"] == [
            n for n in z["truth"]["tie_set"] if n.endswith(" full")]],
        "truth_train_examples": sorted({z["truth"]["train_examples"] for z in zoos.values()}),
        "truth_seeds": sorted({len(z["truth"]["seeds"]) for z in zoos.values()}),
        "defaults_train_examples": sorted({r["train_examples"] for r in rows}),
        "pairs_by_kind": by_kind,
        "pairs_by_kind_guesses": {g: _pooled([e["guesses"][g] for e in errors if g in e["guesses"]])
                                  for g in GUESSES},
        "pair_errors_with_ia3_share": (sum(v for k, v in wrong.items() if "with IA3" in k) / sum(wrong.values())
                                       if sum(wrong.values()) else None),
    }
    return {"source": [f"results/zoo-{t}.json" for t in zoos], "k": K, "summary": summary,
            "method_gaps": gaps, "replicates": reps, "full_picks": fulls, "pair_errors": errors,
            "command": "python bench/method_gap.py"}


def main() -> None:
    found = study()
    out = RESULTS / "method-gap.json"
    write_json_atomic(out, envelope(**found))
    for key, value in found["summary"].items():
        print(f"{key}: {value}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
