"""Sequential evaluation: score candidates on growing batches of the same test questions, and stop as
soon as the decision is made, instead of scoring every compressed candidate on the whole test split
(evaluation was 86-89% of a selection's FLOPs in the zoo).

The rule, at each look (n = first, first x growth, ... questions, the same for every candidate):
- every pair of candidates is compared on the questions both have answered: the mean paired
  difference d and its standard error s (per-question differences; for bits per byte the
  per-question difference of answer bits over the mean answer bytes, which averages exactly to the
  difference of the two bits-per-byte figures, the answers' bytes being the same for both);
- a candidate is dropped when some other candidate is clearly better than it: d > z s (and d > margin:
  a candidate within the margin ties);
- the run stops when one candidate is left, or when every pair left is provably within the tie
  margin (|d| + z s <= margin), or when the pick is settled (`settled`: the rest of the questions
  would change it with a predictive probability below `settle` against every other candidate), or
  before a batch that would take evaluation past `budget` x the candidates' training FLOPs, or when
  the questions run out.
z is one-sided at level alpha / (looks x candidates x (candidates - 1)) (Bonferroni over every look
and every ordered pair). Testing only against the leader would not do: the leader is the best of
several by chance as well, and with four equal candidates that rule dropped one in 12% of simulated
runs at alpha 0.05. With every pair counted, the chance that the rule ever drops a candidate as good
as the best is about alpha or less (the SE is a normal approximation, rough at 100 questions):
measured over 1,000 simulated runs of four equal candidates, 5.1% with independent questions and 3.8%
with a shared difficulty (`tests/test_sequential.py` checks it stays within two binomial SE of alpha).
Settling drops no one, so the rate above is unchanged; what it risks is a different pick than
scoring every question the drop rule allows would give: over 300 simulated runs of four candidates
in each of three scenarios, at most settle of runs within two binomial SE (`tests/test_sequential.py`).
Nothing here trains or evaluates: it decides on the scores it is given (strategies/fixed.py runs it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np


def looks(first: int, total: int, growth: float = 2.0) -> list[int]:
    """Question counts at which the rule looks: first, first x growth, ..., total."""
    if first < 2 or total < 1 or growth <= 1:
        raise ValueError("first must be at least 2, total at least 1, growth above 1")
    out, n = [], first
    while n < total:
        out.append(n)
        n = math.ceil(n * growth)
    return out + [total]


def z_for(alpha: float, n_looks: int, n_candidates: int) -> float:
    """The one-sided critical value that keeps the chance of any wrong drop at most alpha."""
    comparisons = max(1, n_looks * n_candidates * (n_candidates - 1))
    return NormalDist().inv_cdf(1 - alpha / comparisons)


def per_question(records: list[dict], metric: str) -> np.ndarray:
    """A candidate's per-question score, higher is better: correctness for accuracy, minus the answer's
    bits over the mean answer bytes for bits per byte (so differences average to the bpb difference)."""
    if metric == "accuracy":
        return np.array([float(r["pred"] == r["label"]) for r in records])
    nll = np.array([r["answer_nll"] for r in records], dtype=float)
    nbytes = np.array([r["answer_bytes"] for r in records], dtype=float)
    return -nll / math.log(2) / max(nbytes.mean(), 1e-12)


@dataclass
class Decision:
    survivors: list[str]
    dropped: dict[str, int] = field(default_factory=dict)  # name -> questions seen when dropped
    questions: dict[str, int] = field(default_factory=dict)  # name -> questions it was scored on
    stopped: str = ""
    z: float = 0.0
    looks: list[int] = field(default_factory=list)


@dataclass
class Rule:
    """The stopping rule's settings for one run: what `look` applies at each look, alike in simulations
    (`decide`) and in a run (strategies/fixed.py)."""
    plan: list[int]
    z: float
    margin: float = 0.0
    settle: float = 0.0
    budget: float = 0.0

    @classmethod
    def of(cls, total: int, n_candidates: int, first: int = 100, growth: float = 2.0, alpha: float = 0.05,
           margin: float = 0.0, settle: float = 0.0, budget: float = 0.0) -> Rule:
        """The rule for `total` questions and `n_candidates`: its looks, and z over all of them."""
        plan = looks(min(first, total), total, growth)
        return cls(plan, z_for(alpha, len(plan), n_candidates), margin, settle, budget)

    def look(self, scores: dict[str, np.ndarray], n: int, seen: dict[str, int], dropped: dict[str, int],
             cost: dict[str, float] | None = None, eval_cost: dict[str, float] | None = None) -> tuple[list[str], str]:
        """One look after n questions. `scores`: the candidates still in the race, on those questions. Records
        each one's questions in `seen` and the newly dropped in `dropped` (a dropped or failed candidate keeps
        what it saw, which the budget still counts); returns the survivors and why the run stops ("" to go on).
        `cost`: training FLOPs and `eval_cost`: evaluation FLOPs per question, by candidate, for everyone seen
        (needed only to settle or to budget)."""
        seen.update(dict.fromkeys(scores, n))
        worse, within = step(scores, self.z, self.margin)
        dropped.update(dict.fromkeys(sorted(worse), n))  # (a set: sorted, so results do not vary by hash seed)
        alive = [name for name in scores if name not in worse]
        more = n < self.plan[-1]
        if len(alive) <= 1:
            return alive, f"one candidate left after {n} questions"
        if within:
            return alive, f"the {len(alive)} left are within the tie margin {self.margin:g} after {n} questions"
        if self.settle and more and settled({a: scores[a] for a in alive}, {a: cost[a] for a in alive},
                                            self.plan[-1], self.settle, margin=self.margin) is not None:
            return alive, f"the pick is settled after {n} questions"
        if self.budget and more and budget_passed(
                eval_cost, seen | dict.fromkeys(alive, self.plan[self.plan.index(n) + 1]),
                sum(cost[a] for a in seen), self.budget):
            return alive, budget_stop(self.budget, n)
        return alive, ""


def decide(score: Callable[[str, int], np.ndarray], names: list[str], total: int, first: int = 100,
           growth: float = 2.0, alpha: float = 0.05, margin: float = 0.0, settle: float = 0.0,
           cost: dict[str, float] | None = None, budget: float = 0.0,
           eval_cost: dict[str, float] | None = None) -> Decision:
    """Run the rule. `score(name, n)` gives a candidate's per-question scores (higher is better) on the
    first n questions (a caller scores only what it has not yet). `margin`: a difference this small is
    a tie, in the score's units (accuracy as a fraction, or bits per byte), for stopping and for the
    pick. `settle` > 0 (with each candidate's training `cost`) also stops once the pick is settled at
    that probability (`settled`). `budget` > 0 (with `cost` and each candidate's evaluation FLOPs per
    question, `eval_cost`) stops before a batch that would pass it (`budget_passed`)."""
    if not names:
        raise ValueError("no candidates to decide between")
    if (settle or budget) and cost is None:
        raise ValueError("settling and a budget need each candidate's training cost")
    if budget and eval_cost is None:
        raise ValueError("a budget needs each candidate's evaluation FLOPs per question")
    rule = Rule.of(total, len(names), first, growth, alpha, margin, settle, budget)
    plan = rule.plan
    alive = list(names)
    out = Decision(survivors=alive, z=rule.z, looks=plan)
    for n in plan:
        scores = {name: np.asarray(score(name, n), dtype=float)[:n] for name in alive}
        alive, out.stopped = rule.look(scores, n, out.questions, out.dropped, cost, eval_cost)
        if out.stopped:
            break
    else:
        out.stopped = f"all {total} questions used"
    out.survivors = alive
    return out


def budget_passed(per_question: dict[str, float], questions_after: dict[str, int], train_flops: float,
                  budget: float) -> bool:
    """Whether the next batch would take evaluation past `budget` x the candidates' training FLOPs.
    `questions_after`: every candidate's questions once the batch is scored (the dropped keep theirs);
    `per_question`: its evaluation FLOPs per question, as its first batch cost (questions vary in length, so
    this prices the plan, not each question). Why a cap at all: whatever the margin, some run's leaders sit
    near it, and then no rule can tell them apart before the last question; the verdict on the questions
    scored ties them, and the cheapest of the tie set is what the user fine-tunes."""
    return sum(per_question[a] * q for a, q in questions_after.items()) > budget * train_flops


def budget_stop(budget: float, n: int) -> str:
    return (f"the evaluation budget ({budget:g}x the training FLOPs) would be passed by the next batch, "
            f"after {n} questions")


def cheapest_tied(scores: dict[str, np.ndarray], cost: dict[str, float], k: float = 2.0, margin: float = 0.0) -> str:
    """The verdict's pick (summary.verdict) on per-question scores: the cheapest candidate within k paired
    SE (or `margin`) of the best on the questions all have answered, the better score breaking a tie in
    cost."""
    n = min(len(v) for v in scores.values())
    mean = {a: float(scores[a][:n].mean()) for a in scores}
    best = max(mean, key=mean.get)
    tied = [a for a in scores if a == best or _gap(scores[best][:n] - scores[a][:n]) <= k
            or mean[best] - mean[a] <= margin]
    return min(tied, key=lambda a: (cost[a], -mean[a]))


def settled(scores: dict[str, np.ndarray], cost: dict[str, float], total: int, gamma: float,
            k: float = 2.0, margin: float = 0.0) -> str | None:
    """The pick, if the rest of the questions are unlikely to change it; else None.

    The pick is the verdict's (summary.verdict): the cheapest candidate within k paired SE of the
    best. It stands when, for every other candidate c, the predictive probability (a flat prior on
    the true paired difference, so its uncertainty and the unseen questions' noise both count) is
    below gamma that, on all `total` questions, the pick ends more than k SE behind c, or, for c
    cheaper than the pick, that c ends within k SE of the best. What that buys: the candidates still
    in the race are not scored on every question only to separate two the pick does not depend on
    (ASDiv's Gemma-3 LoRA and DoRA took 800 questions to tell apart while the pick stayed DoRA). With a
    `margin`, the tie line is the larger of k SE and the margin, as in the verdict."""
    names = list(scores)
    n = min(len(v) for v in scores.values())
    best = max(names, key=lambda a: float(scores[a][:n].mean()))
    pick = cheapest_tied(scores, cost, k, margin)
    for c in names:
        if c == pick:
            continue
        if ends_beyond(scores[c][:n] - scores[pick][:n], total, k, margin) >= gamma:
            return None
        # one as cheap as the pick that ends in the tie set could take its place
        if cost[c] <= cost[pick] and 1 - ends_beyond(scores[best][:n] - scores[c][:n], total, k, margin) >= gamma:
            return None
    return pick


def best_part(scores: dict[str, np.ndarray], keep: int) -> list[str]:
    """The `keep` candidates with the best mean score so far (successive halving's survivors)."""
    return sorted(scores, key=lambda a: -float(np.mean(scores[a])))[:keep]


def part_decided(scores: dict[str, np.ndarray], keep: int, z: float) -> bool:
    """Whether each of the `keep` best is clearly better (the drop rule's z) than each of the rest."""
    top = best_part(scores, keep)
    return all(_clearly(scores[a] - scores[b], z) for a in top for b in scores if b not in top)


def part_settled(scores: dict[str, np.ndarray], total: int, keep: int, gamma: float) -> bool:
    """Whether the rest of the questions are unlikely to change which `keep` are best: for every pair of
    one inside and one outside, the predictive probability (as in `settled`) that the outside one ends
    ahead on all `total` questions is below gamma. Pairs far apart add almost nothing: over 300 simulated
    runs in each of six scenarios (two to eight candidates, keeping one to four), the part changed against
    scoring every question in 0.3-4% of runs at gamma 0.05 (`tests/test_sequential.py` checks gamma
    within two binomial SE)."""
    top = best_part(scores, keep)
    n = min(len(v) for v in scores.values())
    return all(ends_beyond(scores[b][:n] - scores[a][:n], total, 0.0) < gamma
               for a in top for b in scores if b not in top)


def _gap(d: np.ndarray) -> float:
    se = _se(d)
    return float(d.mean()) / se if se > 0 else (math.inf if d.mean() > 0 else 0.0)


def ends_beyond(d: np.ndarray, total: int, k: float = 2.0, margin: float = 0.0) -> float:
    """Predictive probability that the mean of d over all `total` questions exceeds k of its SEs there
    (or `margin`, where that is larger). Differences that have not varied yet (two candidates with the
    same answers so far) say nothing about the unseen questions: 0.5, which settles nothing."""
    n = len(d)
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if n >= total:
        return float(d.mean() > max(k * sd / math.sqrt(n), margin))
    if sd == 0:
        return 0.5
    line = max(k * sd / math.sqrt(total), margin)
    spread = sd * math.sqrt((total - n) / (total * n))
    return 1 - NormalDist().cdf((line - float(d.mean())) / spread)


def step(scores: dict[str, np.ndarray], z: float, margin: float) -> tuple[set[str], bool]:
    """One look: the candidates some other one is clearly better than (to drop), and whether every pair
    of the rest is provably within the tie margin. `scores`: per-question, higher is better, the same
    questions for all."""
    names = list(scores)
    worse = {a for a in names for b in names if a != b and _clearly(scores[b] - scores[a], z, margin)}
    alive = [a for a in names if a not in worse]
    within = margin > 0 and all(_within(scores[a] - scores[b], z, margin)
                                for i, a in enumerate(alive) for b in alive[i + 1:])
    return worse, within


def _se(d: np.ndarray) -> float:
    return float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.inf


def _clearly(d: np.ndarray, z: float, margin: float = 0.0) -> bool:
    """The first candidate of the pair is clearly better: its mean paired advantage beyond z SE, and beyond
    the tie margin (a candidate within the margin ties the verdict's best, so it is not dropped)."""
    return float(d.mean()) > max(z * _se(d), margin)


def _within(d: np.ndarray, z: float, margin: float) -> bool:
    """The pair is provably within the tie margin."""
    return abs(float(d.mean())) + z * _se(d) <= margin
