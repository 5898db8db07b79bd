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
from damoc.flops import matmul_params_of
from damoc.registry import Registry
from damoc.tasks.base import Example


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


METHODS: Registry[Callable[[Context], Selection]] = Registry("recovery method")
register = METHODS.register


def resolve_budget(budget: float, pool_size: int) -> int:
    """A share in (0, 1) of the pool, or a count >= 1."""
    if pool_size == 0:
        raise DamocError("the pool is empty")
    if budget <= 0:
        raise DamocError(f"--budget {budget} must be positive (a share in (0, 1) or a count)")
    n = math.floor(budget * pool_size) if budget < 1 else int(budget)
    if budget >= 1 and budget != int(budget):
        raise DamocError(f"--budget {budget}: a count must be a whole number")
    if n < 1:
        raise DamocError(f"--budget {budget} of {pool_size} samples selects nothing")
    if n > pool_size:
        raise DamocError(f"--budget {n} is larger than the pool ({pool_size} samples)")
    return n


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


def token_ids(tokenizer, pool: list[Example], max_len: int) -> list[list[int]]:
    from damoc.encoding import encode
    from damoc.tasks.base import continuation

    return [encode(tokenizer, e, continuation(e), max_len).input_ids for e in pool]


@register("paser")
def select_paser(ctx: Context) -> Selection:
    from damoc.filtering.base import example_text
    from damoc.filtering.embeddings import embed_with_cost
    from damoc.models import load_model, load_tokenizer
    from damoc.recovery.budget import allocate_budget
    from damoc.recovery.cluster import cluster
    from damoc.recovery.concepts import ConceptGraph, extract_concepts
    from damoc.recovery.degradation import cached_sample_jsd, same_vocabulary

    seconds = {}
    t0 = time.perf_counter()
    tok, tok_pruned = load_tokenizer(ctx.original), load_tokenizer(ctx.pruned)
    if not same_vocabulary(tok, tok_pruned):
        raise DamocError(f"{ctx.pruned} does not share {ctx.original}'s tokenizer: PASER compares their "
                         "next-token distributions token by token")
    texts = [example_text(e) for e in ctx.pool]
    emb, embed_cost = embed_with_cost(texts, ctx.embedder, progress=ctx.progress)
    seconds["embed"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    clustering = cluster(emb, ctx.clusters, seed=ctx.seed)
    seconds["cluster"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ids = token_ids(tok, ctx.pool, ctx.max_len)
    values, jsd_cached = cached_sample_jsd(ctx.original, ctx.pruned, lambda: load_model(ctx.original).eval(),
                                           lambda: load_model(ctx.pruned).eval(), ids, tok.pad_token_id,
                                           ctx.batch_size, progress=ctx.progress)
    jsd = np.array(values)
    tokens = sum(len(x) for x in ids)
    # Two forward passes over the pool (original and pruned), counted even when read from the cache.
    jsd_flops = 2.0 * tokens * (matmul_params_of(ctx.original) + matmul_params_of(ctx.pruned))
    seconds["jsd"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    labels = clustering.labels
    k = int(labels.max()) + 1
    members = [np.flatnonzero(labels == c) for c in range(k)]
    cds = [float(jsd[m].mean()) for m in members]
    alloc = allocate_budget(ctx.budget, cds, [len(m) for m in members])
    efficiency = jsd / np.log(np.maximum([len(x) for x in ids], 2))
    graph, chosen, rejected = ConceptGraph(), [], 0
    concepts = {}

    def offer(i: int) -> bool:
        nonlocal rejected
        concepts[i] = concepts.get(i) or extract_concepts(texts[i])
        if graph.offer(concepts[i]):
            chosen.append(i)
            return True
        rejected += 1
        return False

    filled = [0] * k
    for c in sorted(range(k), key=lambda c: -cds[c]):
        for i in sorted(members[c].tolist(), key=lambda i: -efficiency[i]):
            if filled[c] >= alloc[c]:
                break
            filled[c] += offer(i)
    shortfall = ctx.budget - len(chosen)
    if shortfall:
        for i in sorted(set(range(len(ctx.pool))) - set(chosen), key=lambda i: -efficiency[i]):
            if len(chosen) >= ctx.budget:
                break
            offer(i)
    seconds["allocate_and_graph"] = time.perf_counter() - t0
    per_sample = {i: {"cluster": int(labels[i]), "jsd": float(jsd[i]), "score": float(efficiency[i]),
                      "concepts": concepts.get(i, [])} for i in chosen}
    summary = {
        "clusters": k, "nmf_errors": {str(kk): v for kk, v in clustering.errors.items()},
        "cluster_sizes": [len(m) for m in members], "cluster_degradation": cds, "cluster_budget": alloc,
        "cluster_selected": [int(sum(labels[i] == c for i in chosen)) for c in range(k)],
        "shortfall_after_clusters": shortfall, "rejected_by_concept_graph": rejected,
        "selected": len(chosen), "jsd_mean_pool": float(jsd.mean()),
        "jsd_mean_selected": float(jsd[chosen].mean()) if chosen else None,
        "seconds": seconds, "jsd_cached": jsd_cached, "forward_flops": embed_cost["forward_flops"] + jsd_flops,
        "map_2d": clustering.embedding[:, :2].tolist() if len(ctx.pool) <= 20000 else None,
        "labels": labels.tolist() if len(ctx.pool) <= 20000 else None,
    }
    return Selection(chosen, per_sample, summary)


def select_recovery(method: str, ctx: Context) -> Selection:
    run = METHODS.get(method)
    start = time.perf_counter()
    result = run(ctx)
    result.summary["select_seconds"] = time.perf_counter() - start
    if len(set(result.indices)) != len(result.indices):
        raise AssertionError(f"{method} chose a sample twice")
    return result
