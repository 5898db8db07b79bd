"""How well a cheap ranking agrees with the full fine-tuning one.

Both rankings are given as scores per candidate (higher is better once `higher_is_better`
orients them). Kendall's tau-b and Spearman's rho both handle ties, which are common: small
models often tie on accuracy. Regret is in the true metric: how much worse the candidate the
cheap ranking chose is than the truly best one (0 when it chose right).
"""

from __future__ import annotations

import numpy as np

from damoc.errors import DamocError


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1 = smallest), ties sharing the mean of their positions."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tied = x == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def kendall_tau_b(a: np.ndarray, b: np.ndarray) -> float:
    concordant = discordant = ties_a = ties_b = 0
    n = len(a)
    for i in range(n):
        for j in range(i + 1, n):
            da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif da == db:
                concordant += 1
            else:
                discordant += 1
    denom = np.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return float((concordant - discordant) / denom) if denom > 0 else float("nan")


def spearman_rho(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def compare_rankings(proxy: dict[str, float], truth: dict[str, float], higher_is_better: bool = True) -> dict:
    names = sorted(set(proxy) & set(truth))
    if len(names) < 2:
        raise DamocError("comparing rankings needs at least two candidates scored by both")
    sign = 1.0 if higher_is_better else -1.0
    p = np.array([sign * proxy[n] for n in names])
    t = np.array([sign * truth[n] for n in names])
    chosen, best = names[int(np.argmax(p))], names[int(np.argmax(t))]
    return {"candidates": names, "chosen": chosen, "best": best,
            "top1_match": bool(t[names.index(chosen)] == t.max()),
            "kendall_tau": kendall_tau_b(p, t), "spearman_rho": spearman_rho(p, t),
            "regret": float(t.max() - t[names.index(chosen)])}


def judge(cheap_rank: dict[str, int], truth: dict, choice: bool, pick: str | None = None) -> dict:
    """A cheap ranking (name -> rank, 1 best) judged against a truth with power: `truth` is
    `confidence.tie_set` on the full fine-tuning predictions. A truth whose tie set holds several
    candidates cannot judge a strict top-1, so the pick is judged by being in the tie set, by its
    regret (with the paired standard error), and by agreement on the pairs the truth separates
    (difference beyond 2 paired SE), the only pairs whose order is known. `pick`: what the run
    recommends, when that is not the ranking's first (the verdict's cheapest of its tie set): the user
    fine-tunes the recommendation, so that is what is judged."""
    chosen = pick if pick is not None else min(cheap_rank, key=cheap_rank.get)
    if chosen not in truth["differences"]:
        raise ValueError(f"the pick {chosen!r} has no full fine-tuning result to be judged against")
    key = "accuracy" if choice else "bpb"
    separated = agreed = 0.0
    methods = method_agreed = 0.0
    for p in truth["pairs"]:
        d, se = p[f"{key}_diff"], p[f"{key}_diff_se"]
        if abs(d) > 2 * se and p["a"] in cheap_rank and p["b"] in cheap_rank:
            a_truly_better = d > 0 if choice else d < 0
            ra, rb = cheap_rank[p["a"]], cheap_rank[p["b"]]
            # a ranking that ties the pair (a free guess cannot order two methods of one model) is half right
            right = 0.5 if ra == rb else float(a_truly_better == (ra < rb))
            separated += 1
            agreed += right
            if _model_of(p["a"]) == _model_of(p["b"]):
                methods += 1
                method_agreed += right
    diff = truth["differences"][chosen]
    return {"chosen": chosen, "truth_best": truth["best"], "truth_tie_set": truth["tie_set"],
            "in_tie_set": chosen in truth["tie_set"], "top1": chosen == truth["best"],
            "regret": diff["diff"], "regret_se": diff["se"], "separated_pairs": int(separated),
            "separated_pairs_agreement": agreed / separated if separated else None,
            "method_pairs": int(methods), "method_pairs_agreement": method_agreed / methods if methods else None}


def _model_of(name: str) -> str:
    """A candidate name's model: everything before the method (`MODEL METHOD[options]`)."""
    return name.rsplit(" ", 1)[0]
