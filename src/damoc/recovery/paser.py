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
Baselines behind the same interface: `random`, `length` (longest answers first) and `ifd`
(instruction-following difficulty under the pruned model, as `damoc filter` computes it).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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


@register("paser")
def select_paser(ctx: Context) -> Selection:
    """Cluster the pool, measure each sample's degradation, share the budget by cluster
    degradation, then pick by efficiency (JSD / log tokens) while the concept graph stays consistent."""
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
        measured = measured_samples(clustering.labels, ctx.jsd_sample, ctx.seed)
        jsd, lengths, jsd_cached, jsd_flops = measure_degradation(ctx, tok, measured)
    with clock.stage("allocate_and_graph"):
        pick = ClusterPicker(clustering.labels, jsd, lengths, texts, ctx.budget)
        shortfall, despite = pick.run()
    labels, chosen = clustering.labels, pick.chosen
    # (an unmeasured sample, taken only when the measured ones cannot fill the budget, has no JSD)
    per_sample = {i: {"cluster": int(labels[i]), "jsd": float(jsd[i]) if np.isfinite(jsd[i]) else None,
                      "score": float(pick.efficiency[i]) if np.isfinite(jsd[i]) else None,
                      "concepts": pick.concepts.get(i, [])} for i in chosen}
    small = len(ctx.pool) <= 20000
    summary = {
        "clusters": pick.k, "nmf_errors": {str(kk): v for kk, v in clustering.errors.items()},
        "graph_components": clustering.components, "cluster_text": ctx.cluster_text,
        "adjusted_rand_vs_sources": adjusted_rand_vs_sources(labels, ctx.pool),
        "cluster_sizes": [len(m) for m in pick.members], "cluster_degradation": pick.degradation,
        "cluster_budget": pick.allocation,
        "cluster_selected": [int(sum(labels[i] == c for i in chosen)) for c in range(pick.k)],
        "shortfall_after_clusters": shortfall, "taken_despite_concept_graph": despite,
        "rejected_by_concept_graph": pick.rejected,
        "share_rejected_by_concept_graph": pick.rejected / max(len(pick.offered), 1),
        "selected": len(chosen), "jsd_measured": len(measured), "jsd_mean_pool": float(np.nanmean(jsd)),
        "jsd_mean_selected": float(np.nanmean(jsd[chosen])) if chosen else None,
        "seconds": clock.seconds, "jsd_cached": jsd_cached, "jsd_flops": jsd_flops,
        "forward_flops": embed_cost["forward_flops"] + jsd_flops,
        "map_2d": clustering.embedding[:, :2].tolist() if small else None,
        "labels": labels.tolist() if small else None,
    }
    return Selection(chosen, per_sample, summary)


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
    efficiency, each taken only if its concepts keep the graph consistent."""

    def __init__(self, labels: np.ndarray, jsd: np.ndarray, lengths: list[int], texts: list[str], budget: int):
        from damoc.recovery.budget import allocate_budget
        from damoc.recovery.concepts import ConceptGraph

        self.k = int(labels.max()) + 1
        self.members = [np.flatnonzero(labels == c) for c in range(self.k)]
        # Unmeasured samples (NaN: `jsd_sample`) inform nothing and are never offered.
        self.degradation = [float(np.nanmean(jsd[m])) for m in self.members]
        self.allocation = allocate_budget(budget, self.degradation, [len(m) for m in self.members])
        self.efficiency = np.nan_to_num(jsd / np.log(np.maximum(lengths, 2)), nan=-np.inf)
        self.texts, self.budget = texts, budget
        self.graph, self.chosen, self.concepts = ConceptGraph(), [], {}
        self.offered: set[int] = set()
        self.refused: set[int] = set()  # offered, refused by the graph and never taken: each counted once

    @property
    def rejected(self) -> int:
        return len(self.refused)

    def offer(self, i: int) -> bool:
        from damoc.recovery.concepts import extract_concepts

        self.offered.add(i)
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
            for i in sorted(self.members[c].tolist(), key=lambda i: -self.efficiency[i]):
                if filled >= self.allocation[c] or self.efficiency[i] == -np.inf:
                    break
                filled += self.offer(i)

    def fill_shortfall(self) -> int:
        """What the clusters could not fill (the graph refused too many), from the whole pool."""
        shortfall = self.budget - len(self.chosen)
        if shortfall:
            # Samples the graph refused are offered again: the graph has grown since.
            rest = sorted(set(range(len(self.texts))) - set(self.chosen), key=lambda i: -self.efficiency[i])
            for i in rest:  # unmeasured samples (-inf) last
                if len(self.chosen) >= self.budget:
                    break
                self.offer(i)
        return shortfall

    def run(self) -> tuple[int, int]:
        """The whole selection: clusters, then the shortfall, then the graph's refusals if the
        budget still needs them. (shortfall after the clusters, taken despite the graph)"""
        self.within_clusters()
        return self.fill_shortfall(), self.fill_despite_graph()

    def fill_despite_graph(self) -> int:
        """Whatever the graph left short of the budget, from the refused samples by efficiency."""
        extra = sorted(self.refused, key=lambda i: -self.efficiency[i])[: self.budget - len(self.chosen)]
        self.chosen += extra
        return len(extra)


def select_recovery(method: str, ctx: Context) -> Selection:
    run = METHODS.get(method)
    start = time.perf_counter()
    result = run(ctx)
    result.summary["select_seconds"] = time.perf_counter() - start
    if len(set(result.indices)) != len(result.indices):
        raise AssertionError(f"{method} chose a sample twice")
    return result
