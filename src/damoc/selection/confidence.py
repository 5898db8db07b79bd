"""How sure a ranking is: a paired bootstrap over the test questions.

All candidates answer the same questions, so their scores move together from question to
question; resampling questions jointly (paired) measures the difference between two
candidates far more tightly than their separate standard errors suggest.
"""

from __future__ import annotations

import math

import numpy as np


def _arrays(records: list[dict]) -> dict[str, np.ndarray]:
    out = {"nll": np.array([r["answer_nll"] for r in records], dtype=np.float64),
           "bytes": np.array([r["answer_bytes"] for r in records], dtype=np.float64)}
    if records and "label" in records[0]:
        out["correct"] = np.array([r["pred"] == r["label"] for r in records], dtype=np.float64)
    return out


def _scores(a: dict[str, np.ndarray], idx: np.ndarray) -> tuple[float, float]:
    acc = float(a["correct"][idx].mean()) if "correct" in a else 0.0
    bpb = float(a["nll"][idx].sum() / max(a["bytes"][idx].sum(), 1) / math.log(2))
    return acc, bpb


def paired_bootstrap(predictions: dict[str, list[dict]], samples: int = 1000, seed: int = 0) -> dict:
    """predictions: candidate name -> per-question records in the same question order.

    Returns each candidate's probability of ranking first (accuracy, ties by bits per byte)
    and, for every pair, the mean difference with its paired standard error."""
    names = list(predictions)
    ids = [[r["id"] for r in recs] for recs in predictions.values()]
    if any(i != ids[0] for i in ids):
        raise ValueError("candidates were evaluated on different questions")
    arrays = {n: _arrays(predictions[n]) for n in names}
    n_q = len(ids[0])
    rng = np.random.default_rng(seed)
    wins = dict.fromkeys(names, 0)
    draws: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for _ in range(samples):
        idx = rng.integers(0, n_q, n_q)
        scores = {n: _scores(arrays[n], idx) for n in names}
        for n in names:
            draws[n].append(scores[n])
        wins[min(names, key=lambda n: (-scores[n][0], scores[n][1]))] += 1
    pairs = []
    full = np.arange(n_q)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            da = np.array(draws[a]) - np.array(draws[b])
            sa, sb = _scores(arrays[a], full), _scores(arrays[b], full)
            pairs.append({"a": a, "b": b,
                          "accuracy_diff": sa[0] - sb[0], "accuracy_diff_se": float(da[:, 0].std(ddof=1)),
                          "bpb_diff": sa[1] - sb[1], "bpb_diff_se": float(da[:, 1].std(ddof=1))})
    return {"samples": samples, "prob_best": {n: wins[n] / samples for n in names}, "pairs": pairs}


def tie_set(predictions: dict[str, list[dict]], choice: bool, samples: int = 1000, seed: int = 0,
            k: float = 2.0, boot: dict | None = None, margin: float = 0.0) -> dict:
    """The candidates that cannot be told apart from the best on these questions: those whose
    paired difference to the best, under the primary metric (accuracy for choice tasks, bits per
    byte otherwise), is within `k` paired standard errors, or within `margin` (a difference too small
    to act on, however precisely measured: two adapters of one model can differ by 0.001 bits per byte
    at a paired SE of 0.0005). One member: a confident leader.

    Returns {"best", "tie_set" (best first), "differences": name -> {"diff", "se"} against the
    best (positive: worse), "prob_best", "metric", "k", "margin"}."""
    boot = boot or paired_bootstrap(predictions, samples=samples, seed=seed)  # reuse one already made
    full = {n: _scores(_arrays(recs), np.arange(len(recs))) for n, recs in predictions.items()}
    best = min(full, key=lambda n: (-full[n][0], full[n][1]) if choice else (full[n][1], 0.0))
    key = "accuracy" if choice else "bpb"
    diffs = {best: {"diff": 0.0, "se": 0.0}}
    for p in boot["pairs"]:
        if best not in (p["a"], p["b"]):
            continue
        other = p["b"] if p["a"] == best else p["a"]
        d = p[f"{key}_diff"] if p["a"] == best else -p[f"{key}_diff"]  # best minus other
        diffs[other] = {"diff": d if choice else -d, "se": p[f"{key}_diff_se"]}  # positive: other is worse
    tied = [n for n in predictions if n == best or diffs[n]["diff"] <= max(k * diffs[n]["se"], margin)]
    tied.sort(key=lambda n: diffs[n]["diff"])
    return {"best": best, "tie_set": tied, "differences": diffs, "prob_best": boot["prob_best"],
            "metric": "accuracy" if choice else "answer_bpb", "k": k, "margin": margin, "pairs": boot["pairs"]}


def degenerate(predictions: dict[str, list[dict]]) -> dict[str, str]:
    """Candidates whose answers carry no sign of learning the task, each with why: one answer for
    every question, or an accuracy no better than always giving the most common answer. A verdict
    among such candidates ranks label bias, not capability, and the report must say so."""
    out = {}
    for name, records in predictions.items():
        if not records or "label" not in records[0]:
            continue
        labels = [r["label"] for r in records]
        majority = max(labels.count(x) for x in set(labels)) / len(labels)
        answers = {r["pred"] for r in records}
        accuracy = sum(r["pred"] == r["label"] for r in records) / len(records)
        if len(answers) == 1 and len(set(labels)) > 1:
            out[name] = (f"gives one answer (option {next(iter(answers))}) to every question "
                         f"({100 * accuracy:.1f}% correct)")
        elif accuracy <= majority:
            out[name] = (f"scores {100 * accuracy:.1f}%, no better than always giving the most common answer "
                         f"({100 * majority:.1f}%)")
    return out


def tie_set_over_seeds(runs: dict[str, list[list[dict]]], choice: bool, samples: int = 1000, seed: int = 0,
                       k: float = 2.0) -> dict:
    """A truth's tie set when candidates were trained with several seeds. runs: candidate -> one list
    of per-question records per training seed, every list on the same questions in the same order.

    Two noises, reported apart: question noise, the paired bootstrap SE over questions of the
    difference of the seed-averaged scores; seed noise, the SE of each candidate's score over its
    seeds (std / sqrt(seeds); unknown with one seed). A candidate ties the best when its difference
    is within k x sqrt(question SE^2 + seed SE of both^2)."""
    names = list(runs)

    def score(a: dict[str, np.ndarray], idx: np.ndarray) -> float:
        acc, bpb = _scores(a, idx)
        return acc if choice else bpb

    per_seed = {n: [_arrays(r) for r in runs[n]] for n in names}
    n_q = len(runs[names[0]][0])
    full = np.arange(n_q)
    mean = {n: float(np.mean([score(a, full) for a in per_seed[n]])) for n in names}
    seed_se = {n: (float(np.std([score(a, full) for a in per_seed[n]], ddof=1) / math.sqrt(len(per_seed[n])))
                   if len(per_seed[n]) > 1 else None) for n in names}
    best = max(names, key=mean.get) if choice else min(names, key=mean.get)
    rng = np.random.default_rng(seed)
    draws = {n: [] for n in names}
    for _ in range(samples):
        idx = rng.integers(0, n_q, n_q)
        for n in names:
            draws[n].append(np.mean([score(a, idx) for a in per_seed[n]]))
    out: dict[str, dict] = {}
    for n in names:
        diff = (mean[best] - mean[n]) if choice else (mean[n] - mean[best])  # positive: n is worse
        q_se = float(np.std(np.array(draws[best]) - np.array(draws[n]), ddof=1)) if n != best else 0.0
        s2 = sum((seed_se[m] or 0.0) ** 2 for m in {best, n})
        total = math.sqrt(q_se ** 2 + s2) if n != best else 0.0
        out[n] = {"diff": diff, "question_se": q_se, "seed_se": seed_se[n], "se": total,
                  "tied": n == best or diff <= k * total}
    tied = sorted((n for n in names if out[n]["tied"]), key=lambda n: out[n]["diff"])
    key = "accuracy" if choice else "bpb"
    pairs = []  # every pair, in `paired_bootstrap`'s shape (a minus b), its SE counting both noises
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            q = float(np.std(np.array(draws[a]) - np.array(draws[b]), ddof=1))
            se = math.sqrt(q ** 2 + (seed_se[a] or 0.0) ** 2 + (seed_se[b] or 0.0) ** 2)
            pairs.append({"a": a, "b": b, f"{key}_diff": mean[a] - mean[b], f"{key}_diff_se": se,
                          "question_se": q})
    return {"best": best, "tie_set": tied, "differences": out, "scores": mean, "pairs": pairs,
            "seeds": {n: len(per_seed[n]) for n in names}, "metric": "accuracy" if choice else "answer_bpb", "k": k}
