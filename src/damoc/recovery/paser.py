"""Choose a recovery subset of an instruction pool for a pruned model.

PASER (`paser`), read top to bottom:
1. sentence embeddings of the prompts -> S2RIC clusters (cluster.py);
2. per sample, JSD(original, pruned) averaged over its tokens (degradation.py); a cluster's
   degradation score (CDS) is its samples' mean;
3. the budget shared among clusters by CDS, capped, remainder placed (budget.py);
4. clusters visited from most to least degraded; inside one, samples by efficiency
   JSD / log(tokens); a sample joins only if its concepts fit the concept graph
   (concepts.py). A cluster that runs out of acceptable samples leaves its shortfall to a
   last pass over all remaining samples in efficiency order, still under the graph rule.
   If the graph still leaves the budget short (with all key phrases as concepts it refused 91%
   of a 1,032-sample pool), the refused samples fill it in efficiency order, and the summary
   counts them: the budget is what the user asked for, the graph a preference among samples.
Its parts can be switched off one at a time (`Context.cluster_budget`, `within_cluster`,
`concept_graph`; RecoverConfig's fields of the same names), to measure what each adds:
- clustering only: `cluster_budget="size", within_cluster="random", concept_graph=False` (a
  random sample stratified by cluster; no JSD pass at all);
- the degradation budget only: `cluster_budget="degradation", within_cluster="random",
  concept_graph=False`;
- the concept graph off: `concept_graph=False`.
A budget in answer tokens (`Context.budget_tokens`): every method's order is cut where the next
sample's answer would pass the budget (`select_recovery`). A method registered with
`token_budget=True` meets it itself (PASER: its cluster shares depend on the sample budget, so it
searches the largest sample budget whose choice fits); the others are asked for their order of
the whole pool, which is then cut.
Baselines behind the same interface: `random`, `length` (longest answers first) and `ifd`
(instruction-following difficulty under the pruned model, as `damoc filter` computes it).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from damoc.errors import DamocError
from damoc.flops import head_params_of, matmul_params_of
from damoc.registry import Registry
from damoc.tasks.base import Example
from damoc.timing import Stopwatch


@dataclass
class Selection:
    indices: list[int]                       # into the pool, in the order chosen
    per_sample: dict[int, dict] = field(default_factory=dict)  # cluster, jsd, score of chosen ones
    summary: dict = field(default_factory=dict)


@dataclass
class Context:
    """What a method may use; the models are loaded only by methods that need them."""

    pool: list[Example]
    budget: int
    seed: int
    original: str
    pruned: str
    clusters: int | str = "auto"
    embedder: str = "bundled:minilm"
    max_len: int = 512
    batch_size: int = 4
    progress: bool = True
    jsd_span: str = "response"
    cluster_text: str = "sample"
    jsd_prompt_tokens: int | None = None
    jsd_sample: float | None = None
    # A budget in answer tokens instead of `budget` samples, with each pool sample's answer tokens.
    budget_tokens: int | None = None
    answer_tokens: Sequence[int] | None = None
    # PASER's parts (see the module's docstring): all on by default.
    cluster_budget: str = "degradation"     # or "size": clusters share the budget by their size
    within_cluster: str = "efficiency"      # or "random": a seeded random order within a cluster
    concept_graph: bool = True


METHODS: Registry[Callable[[Context], Selection]] = Registry("recovery method")
register = METHODS.register


@register("random")
def select_random(ctx: Context) -> Selection:
    return Selection(random.Random(ctx.seed).sample(range(len(ctx.pool)), ctx.budget))


@register("length")
def select_length(ctx: Context) -> Selection:
    order = sorted(range(len(ctx.pool)), key=lambda i: (-len(ctx.pool[i].answer), i))
    return Selection(order[: ctx.budget])


@register("ifd")
def select_ifd(ctx: Context) -> Selection:
    from damoc.filtering.selectors import IFDSelector

    selector = IFDSelector(ctx.pruned)
    return Selection(selector.select(ctx.pool, ctx.budget, ctx.seed),
                     summary={"forward_flops": selector.forward_flops})


def encoded(tokenizer, pool: list[Example], max_len: int) -> list[tuple[list[int], int]]:
    """Each sample's token ids and where its response starts (the prompt's length)."""
    from damoc.encoding import encode
    from damoc.tasks.base import continuation

    out = []
    for e in pool:
        enc = encode(tokenizer, e, continuation(e), max_len)
        out.append((enc.input_ids, enc.n_prompt))
    return out


@register("paser", token_budget=True)
def select_paser(ctx: Context) -> Selection:
    """Cluster the pool, measure each sample's degradation, share the budget by cluster
    degradation, then pick by efficiency (JSD / log tokens) while the concept graph stays consistent.
    With parts switched off (`ctx.cluster_budget`, `within_cluster`, `concept_graph`) the JSD pass
    runs only if something still uses it."""
    from damoc.filtering.base import example_text
    from damoc.filtering.embeddings import embed_with_cost
    from damoc.models import load_tokenizer
    from damoc.recovery.cluster import cluster
    from damoc.recovery.degradation import same_vocabulary

    clock = Stopwatch()
    with clock.stage("embed"):
        tok, tok_pruned = load_tokenizer(ctx.original), load_tokenizer(ctx.pruned)
        if not same_vocabulary(tok, tok_pruned):
            raise DamocError(f"{ctx.pruned} does not share {ctx.original}'s tokenizer: PASER compares their "
                             "next-token distributions token by token")
        texts = [example_text(e) for e in ctx.pool]
        embedded = [instruction_text(e) for e in ctx.pool] if ctx.cluster_text == "instruction" else texts
        emb, embed_cost = embed_with_cost(embedded, ctx.embedder, progress=ctx.progress)
    with clock.stage("cluster"):
        clustering = cluster(emb, ctx.clusters, seed=ctx.seed)
    with clock.stage("jsd"):
        if ctx.cluster_budget == "degradation" or ctx.within_cluster == "efficiency":
            measured = measured_samples(clustering.labels, ctx.jsd_sample, ctx.seed)
            jsd, lengths, jsd_cached, jsd_flops = measure_degradation(ctx, tok, measured)
        else:  # clustering only: nothing reads the degradation
            measured, jsd, lengths = np.arange(0), np.full(len(ctx.pool), np.nan), [0] * len(ctx.pool)
            jsd_cached, jsd_flops = None, 0.0
    with clock.stage("allocate_and_graph"):
        order = (None if ctx.within_cluster == "efficiency"
                 else np.random.default_rng(ctx.seed).permutation(len(ctx.pool)).astype(float))
        concepts: dict[int, list[str]] = {}  # shared by the pickers of a token budget's search

        def picker(budget: int) -> ClusterPicker:
            p = ClusterPicker(clustering.labels, jsd, lengths, texts, budget, share_by=ctx.cluster_budget,
                              order=order, graph=ctx.concept_graph, concepts=concepts)
            p.run()
            return p

        if ctx.budget_tokens is None:
            pick = picker(ctx.budget)
        else:
            pick = largest_within_tokens(picker, ctx.answer_tokens, ctx.budget_tokens, len(ctx.pool))
        shortfall, despite = pick.shortfall, pick.despite
    labels, chosen = clustering.labels, pick.chosen
    # (an unmeasured sample, taken only when the measured ones cannot fill the budget, has no JSD)
    per_sample = {i: {"cluster": int(labels[i]), "jsd": float(jsd[i]) if np.isfinite(jsd[i]) else None,
                      "score": float(pick.efficiency[i]) if np.isfinite(jsd[i]) else None,
                      "concepts": pick.concepts.get(i, [])} for i in chosen}
    small = len(ctx.pool) <= 20000
    summary = {
        "clusters": pick.k, "nmf_errors": {str(kk): v for kk, v in clustering.errors.items()},
        "graph_components": clustering.components, "cluster_text": ctx.cluster_text,
        "parts": {"cluster_budget": ctx.cluster_budget, "within_cluster": ctx.within_cluster,
                  "concept_graph": ctx.concept_graph},
        "adjusted_rand_vs_sources": adjusted_rand_vs_sources(labels, ctx.pool),
        "cluster_sizes": [len(m) for m in pick.members], "cluster_degradation": pick.degradation,
        "cluster_budget": pick.allocation,
        "cluster_selected": [int(sum(labels[i] == c for i in chosen)) for c in range(pick.k)],
        "shortfall_after_clusters": shortfall, "taken_despite_concept_graph": despite,
        "rejected_by_concept_graph": pick.rejected,
        "share_rejected_by_concept_graph": pick.rejected / max(len(pick.offered), 1),
        "selected": len(chosen), "jsd_measured": len(measured), "jsd_mean_pool": mean_of_measured(jsd),
        "jsd_mean_selected": mean_of_measured(jsd[chosen]) if chosen else None,
        "seconds": clock.seconds, "jsd_cached": jsd_cached, "jsd_flops": jsd_flops,
        "forward_flops": embed_cost["forward_flops"] + jsd_flops,
        "map_2d": clustering.embedding[:, :2].tolist() if small else None,
        "labels": labels.tolist() if small else None,
    }
    return Selection(chosen, per_sample, summary)


def mean_of_measured(values: np.ndarray) -> float:
    """The mean of the finite values (NaN where none is: e.g. a cluster whose JSD was not measured)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def largest_within_tokens(picker: Callable[[int], ClusterPicker], tokens: Sequence[int], limit: int,
                          pool_size: int) -> ClusterPicker:
    """The picker at the largest sample budget whose choice has at most `limit` answer tokens. A
    larger sample budget can change every cluster's share, so PASER's choice at n samples is not the
    start of its choice at n + 1: bisection over n, each try a cheap re-run of the picker (the JSD and
    the clusters are computed once). The answer tokens of a choice grow with n up to the few
    samples a changed share swaps, so the search ends at a budget whose choice fits while one more
    sample's does not."""
    lo, hi, best = 0, pool_size + 1, None  # the choice at lo fits (nothing at 0), the one at hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        p = picker(mid)
        if sum(tokens[i] for i in p.chosen) <= limit:
            lo, best = mid, p
        else:
            hi = mid
    if best is None:
        raise DamocError(f"--budget-tokens {limit} selects nothing: every choice of one sample has a longer answer")
    return best


def cut_at_tokens(order: Sequence[int], tokens: Sequence[int], limit: int) -> list[int]:
    """The start of `order` whose answers hold at most `limit` tokens: the samples in order until the
    next one's answer would pass the budget."""
    total, out = 0, []
    for i in order:
        if total + tokens[i] > limit:
            break
        total += tokens[i]
        out.append(i)
    return out


def instruction_text(e: Example) -> str:
    """What a sample asks for, first: the instruction or question (with its options), then the
    context. PASER clusters instructions by capability; a passage first, cut at the embedder's 256
    word pieces, would make the clusters follow the passages instead."""
    ask = (e.prefix.removeprefix("Context: ") + e.suffix).strip()
    return f"{ask} {e.context}".strip()


def adjusted_rand_vs_sources(labels: np.ndarray, pool: list[Example]) -> float:
    """Adjusted Rand index of the clusters against the samples' data sources (1: the same split)."""
    from sklearn.metrics import adjusted_rand_score

    from damoc.recovery.pool import source_of

    return float(adjusted_rand_score([source_of(e) for e in pool], labels))


def measured_samples(labels: np.ndarray, share: float | None, seed: int) -> np.ndarray:
    """The pool samples whose degradation is measured: all, or a seeded `share` of each cluster
    (at least one). The JSD is two models' forward passes over what it measures, the largest
    cost of the selection; a cluster's mean degradation needs only a sample of it, and the
    samples picked within it come from the measured ones."""
    if share is None or share >= 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        out.append(rng.choice(members, size=max(1, math.ceil(share * len(members))), replace=False))
    return np.sort(np.concatenate(out))


def measure_degradation(ctx: Context, tok, measured: np.ndarray) -> tuple[np.ndarray, list[int], bool, float]:
    """Each measured sample's mean JSD between the original and pruned models (cached; NaN for
    a sample not measured), token counts, whether the values came from the cache, and the FLOPs
    of the two forward passes (counted either way)."""
    from damoc.models import load_model
    from damoc.recovery.degradation import cached_sample_jsd

    pairs = encoded(tok, [ctx.pool[i] for i in measured], ctx.max_len)
    if ctx.jsd_prompt_tokens and ctx.jsd_span == "response":  # the response keeps its last N prompt tokens
        pairs = [(ids[max(0, n - ctx.jsd_prompt_tokens):], min(n, ctx.jsd_prompt_tokens)) for ids, n in pairs]
    ids = [p for p, _ in pairs]
    starts = [max(1, n) for _, n in pairs] if ctx.jsd_span == "response" else None
    values, cached = cached_sample_jsd(ctx.original, ctx.pruned, lambda: load_model(ctx.original).eval(),
                                       lambda: load_model(ctx.pruned).eval(), ids, tok.pad_token_id,
                                       ctx.batch_size, progress=ctx.progress, response_starts=starts)
    tokens = sum(len(x) for x in ids)
    # The head runs only where the JSD is averaged (the response span; the batch's union of
    # spans is a little more); the body over every token.
    head_tokens = sum(len(x) - s + 1 for x, s in zip(ids, starts)) if starts is not None else tokens
    flops = 0.0
    for spec in (ctx.original, ctx.pruned):
        head = head_params_of(spec)
        flops += 2.0 * ((matmul_params_of(spec) - head) * tokens + head * head_tokens)
    jsd = np.full(len(ctx.pool), np.nan)
    jsd[measured] = values
    lengths = np.zeros(len(ctx.pool), dtype=int)
    lengths[measured] = [len(x) for x in ids]
    return jsd, lengths.tolist(), cached, flops


class ClusterPicker:
    """The budget shared among clusters by their mean degradation; within each, samples by
    efficiency, each taken only if its concepts keep the graph consistent. Each part can be
    replaced: `share_by="size"` shares the budget by cluster size; `order` (higher first) replaces
    the efficiency order; `graph=False` accepts every sample. `concepts` may be shared between
    pickers over the same texts (each sample's key phrases are extracted once)."""

    def __init__(self, labels: np.ndarray, jsd: np.ndarray, lengths: list[int], texts: list[str], budget: int, *,
                 share_by: str = "degradation", order: np.ndarray | None = None, graph: bool = True,
                 concepts: dict[int, list[str]] | None = None):
        from damoc.recovery.budget import allocate_budget
        from damoc.recovery.concepts import ConceptGraph

        if share_by not in ("degradation", "size"):
            raise ValueError(f"share_by must be 'degradation' or 'size', got {share_by!r}")
        self.k = int(labels.max()) + 1
        self.members = [np.flatnonzero(labels == c) for c in range(self.k)]
        sizes = [len(m) for m in self.members]
        self.degradation = [mean_of_measured(jsd[m]) for m in self.members]
        self.allocation = allocate_budget(budget, self.degradation if share_by == "degradation" else sizes, sizes)
        self.efficiency = np.nan_to_num(jsd / np.log(np.maximum(lengths, 2)), nan=-np.inf)
        # Unmeasured samples (NaN: `jsd_sample`) inform nothing and are never offered in the
        # efficiency order (-inf); a given order offers every sample.
        self.rank = self.efficiency if order is None else np.asarray(order, dtype=float)
        self.texts, self.budget = texts, budget
        self.graph = ConceptGraph() if graph else None
        self.chosen: list[int] = []
        self.concepts = concepts if concepts is not None else {}
        self.offered: set[int] = set()
        self.refused: set[int] = set()  # offered, refused by the graph and never taken: each counted once

    @property
    def rejected(self) -> int:
        return len(self.refused)

    def offer(self, i: int) -> bool:
        from damoc.recovery.concepts import extract_concepts

        self.offered.add(i)
        if self.graph is None:  # the concept graph off: every sample is taken
            self.chosen.append(i)
            return True
        if i not in self.concepts:
            self.concepts[i] = extract_concepts(self.texts[i])
        if self.graph.offer(self.concepts[i]):
            self.chosen.append(i)
            self.refused.discard(i)
            return True
        self.refused.add(i)
        return False

    def within_clusters(self) -> None:
        """Most degraded cluster first; each up to its share of the budget."""
        for c in sorted(range(self.k), key=lambda c: -self.degradation[c]):
            filled = 0
            for i in sorted(self.members[c].tolist(), key=lambda i: -self.rank[i]):
                if filled >= self.allocation[c] or self.rank[i] == -np.inf:
                    break
                filled += self.offer(i)

    def fill_shortfall(self) -> int:
        """What the clusters could not fill (the graph refused too many), from the whole pool."""
        shortfall = self.budget - len(self.chosen)
        if shortfall:
            # Samples the graph refused are offered again: the graph has grown since.
            rest = sorted(set(range(len(self.texts))) - set(self.chosen), key=lambda i: (-self.rank[i], i))
            for i in rest:  # unmeasured samples (-inf) last
                if len(self.chosen) >= self.budget:
                    break
                self.offer(i)
        return shortfall

    def run(self) -> tuple[int, int]:
        """The whole selection: clusters, then the shortfall, then the graph's refusals if the
        budget still needs them. (shortfall after the clusters, taken despite the graph)"""
        self.within_clusters()
        self.shortfall = self.fill_shortfall()
        self.despite = self.fill_despite_graph()
        return self.shortfall, self.despite

    def fill_despite_graph(self) -> int:
        """Whatever the graph left short of the budget, from the refused samples by efficiency."""
        extra = sorted(self.refused, key=lambda i: (-self.rank[i], i))[: self.budget - len(self.chosen)]
        self.chosen += extra
        return len(extra)


def select_recovery(method: str, ctx: Context) -> Selection:
    """The method's choice within `ctx.budget` samples, or within `ctx.budget_tokens` answer tokens:
    its order cut where the next answer would pass the budget (a method registered with
    `token_budget=True` meets the budget itself; the others give their order of the whole pool)."""
    run = METHODS.get(method)
    start = time.perf_counter()
    if ctx.budget_tokens is None:
        result = run(ctx)
    else:
        if ctx.answer_tokens is None or len(ctx.answer_tokens) != len(ctx.pool):
            raise ValueError("a budget in answer tokens needs each pool sample's answer tokens")
        own = METHODS.info(method).get("token_budget", False)
        result = run(ctx if own else replace(ctx, budget=len(ctx.pool)))
        result.indices = cut_at_tokens(result.indices, ctx.answer_tokens, ctx.budget_tokens)
        if not result.indices:
            raise DamocError(f"--budget-tokens {ctx.budget_tokens} selects nothing: {method}'s first sample has a "
                             "longer answer")
        kept = set(result.indices)
        result.per_sample = {i: v for i, v in result.per_sample.items() if i in kept}
        result.summary["selected"] = len(result.indices)
    result.summary["select_seconds"] = time.perf_counter() - start
    if len(set(result.indices)) != len(result.indices):
        raise AssertionError(f"{method} chose a sample twice")
    return result
