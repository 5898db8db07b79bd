"""What a `select` run will cost, before it runs: FLOPs per stage of damoc's route and of full
fine-tuning of every candidate, from the candidates' configs and the data's token lengths.

A user deciding whether damoc is worth it has 7-9B candidates and 10k-100k examples; the runs
this machine can make are 135M-270M models on 1,000. So nothing here loads weights: each model
is built on the meta device from its config (a local folder, a bundled model, or the packaged
`architectures.yaml` for hub models this machine cannot download) and its parameters counted
by the same `damoc.flops` rules the runs report, and each example is tokenized as training
encodes it (shapes.py). What is not known before running is predicted from the settings: the filter keeps
`rate` of the examples (their mean length is the whole set's), compression keeps `ratio` of
each context, pruning removes its cap of `max_fraction` of the layers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from damoc.errors import DamocError
from damoc.filtering.base import example_text, resolve_budget
from damoc.finetune import FinetuneConfig
from damoc.finetune.train import schedule
from damoc.layers.similarity import layer_cap
from damoc.models.bundled import BUNDLED_SCORER
from damoc.selection.shapes import Lengths, Shape, encoder_tokenizer, lengths, shape, tokenizer_for
from damoc.tasks import Example

if TYPE_CHECKING:
    from damoc.selection.config import SelectConfig


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def training_flops(s: Shape, method: str, tokens: float, loss_tokens: float, removed: int = 0,
                   lora_r: int = 0) -> float:
    """damoc.flops' training rule on a Shape, with the adapters on the layers that remain; full and ia3
    add no matmul."""
    from damoc.flops import training_flops as rule

    return rule(s.body(removed) + adapter_params(s, method, removed, lora_r), s.head, tokens, loss_tokens, method,
                dense_delta(s, method, removed))


def dense_delta(s: Shape, method: str, removed: int = 0) -> float:
    """A method that rebuilds a dense update (LoHa) does so for every decoder linear it adapts (all of
    them) and applies it as a second matmul per token while unmerged: damoc.flops.dense_delta_params."""
    from damoc.finetune.methods import get_method

    return float(s.body(removed)) if get_method(method).dense_delta else 0.0


def adapter_params(s: Shape, method: str, removed: int = 0, lora_r: int = 0) -> float:
    """The low-rank adapters' matmul parameters on the layers that remain (lora, dora), as damoc.flops
    counts them on a run's model: it trains with them, and is scored with them unless merged first."""
    rank = {"lora": lora_r, "dora": lora_r}.get(method, 0)
    return rank * s.lora_per_rank * (s.layers - removed) / max(s.layers, 1)


def eval_cost(tok, examples: list[Example], max_len: int, batch_size: int) -> tuple[int, int]:
    """(tokens through the body, positions through the output head) to score the test questions, from
    the requests evaluation encodes and the batches it runs them in (damoc.evaluation.scoring)."""
    from damoc.evaluation.evaluate import scoring_requests
    from damoc.evaluation.scoring import scoring_cost

    choice = all(e.options for e in examples)
    return scoring_cost(scoring_requests(tok, examples, max_len, choice), batch_size)


def _run_tokens(ls: list[Lengths], n: int, config: FinetuneConfig, ratio: float) -> dict:
    plan = schedule(n, config)
    per = _mean([x.trained(config.max_seq_len, ratio) for x in ls])
    return {"examples": n, "epochs": plan.epochs, "steps": plan.steps,
            "tokens": n * plan.epochs * per, "loss_tokens": n * plan.epochs * _mean([x.answer for x in ls])}


def halving_plan(n_candidates: int, n_kept: int) -> list[dict]:
    """Successive halving's rounds as strategies/halving.py runs them: how many candidates train in
    each, on how many of the kept examples."""
    from damoc.selection.strategies.halving import halving_shares

    plan, alive = [], n_candidates
    for r, share in enumerate(halving_shares(n_candidates), start=1):
        plan.append({"round": r, "candidates": alive, "examples": max(1, math.ceil(share * n_kept))})
        alive = math.ceil(alive / 2)
        if alive <= 1:
            break
    return plan


def adaptive_plan(settings, n_candidates: int, n_all: int) -> list[dict]:
    """Adaptive selection's rungs as damoc.selection.adaptive runs them, each with every candidate (its
    most: racing may drop some after `min_rungs`): shares of the whole split up to `max_share`."""
    shares = [x for x in sorted(settings.rungs) if x <= settings.max_share + 1e-12]
    plan = [{"round": r, "candidates": n_candidates, "examples": max(1, math.ceil(x * n_all))}
            for r, x in enumerate(shares, start=1)]
    return plan[:1] if n_candidates <= 1 else plan  # one candidate: nothing to race after its first rung


def scoring_flops(s: Shape, tokens: float, head: float, method: str, removed: int = 0, lora_r: int = 0,
                  unmerged: bool = True) -> float:
    """Scoring's forward FLOPs; a candidate scored with its adapters unmerged pays for them too."""
    extra = adapter_params(s, method, removed, lora_r) + dense_delta(s, method, removed) if unmerged else 0.0
    return s.forward_flops(tokens, removed, head) + 2.0 * extra * tokens


def _filter_cost(f, examples: list[Example], scale: float, n_kept: int) -> tuple[float, dict]:
    """The selector's forward passes, as damoc.filtering.selectors runs them: an embedding of every
    example (facility location; GraphCut: of its random pool where it has one; hybrid: of its IFD pool), and a
    scorer's pass over every
    example with its prompt and over its answer alone (perplexity, IFD, hybrid)."""
    from damoc.filtering.embeddings import BUNDLED_EMBEDDER
    from damoc.filtering.selectors import HYBRID_POOL_FACTOR

    flops, tokens = 0.0, {}
    scorer = f.options.get("scorer", BUNDLED_SCORER)
    if f.method in ("perplexity", "ifd", "hybrid"):
        tok, _ = tokenizer_for(scorer)
        per = _mean([x.trained(512) + x.answer for x in lengths(tok, examples)])
        tokens["scorer"] = scale * len(examples) * per
        flops += shape(scorer).forward_flops(tokens["scorer"])
    def pooled(factor: float | None) -> float:  # the share of the examples a pool of factor x budget embeds
        return min(1.0, factor * n_kept / (scale * len(examples))) if factor else 1.0

    embedded = {"graphcut": pooled(f.options.get("pool_factor")), "facility-location": 1.0,
                "hybrid": pooled(f.options.get("pool_factor", HYBRID_POOL_FACTOR))}
    if f.method in embedded:
        embedder = f.options.get("embedder", BUNDLED_EMBEDDER)
        tok, limit = encoder_tokenizer(embedder)
        per = _mean([min(len(x), limit) for x in tok([example_text(e) for e in examples])["input_ids"]])
        tokens["embedder"] = embedded[f.method] * scale * len(examples) * per
        flops += shape(embedder, causal=False).forward_flops(tokens["embedder"])
    return flops, tokens


def estimate(config: SelectConfig, examples: list[Example], n_examples: int | None = None,
             throughput: float | None = None, test: list[Example] | None = None) -> dict:
    """Predicted tokens and FLOPs of `select` (config: a SelectConfig) and of full fine-tuning on
    `examples` (the training sample), scaled to `n_examples` when given; hours when `throughput`
    (training FLOP/s achieved on the user's device) is given. With `test` (the questions every
    candidate is scored on) evaluation is priced too: every candidate on both routes (damoc's pruned),
    and damoc's zero-shot pass of each model; generation for ROUGE-L is not priced. Every number is
    finite or None (strict JSON)."""
    _check(examples, n_examples, throughput)
    route = _Route.of(config, examples, n_examples)
    flops, data, notes = _data_stage(route, examples)
    notes += config.unused_settings()  # priced as the run would go: without them
    plan = _plan(route)
    rows, per_round, measured = _candidate_rows(route, examples, plan, test, notes)
    full_flops = sum(r["full"]["flops"] for r in rows)
    train_flops, staged = _staged(route, plan, per_round, notes) if plan else \
        (sum(r["damoc"]["flops"] for r in rows), {})
    # the candidates of one model share one similarity pass (runner.pruner): each model's once
    overhead = sum(flops.values()) + sum({r["model"]: r["damoc"]["prune_flops"] for r in rows}.values())
    out = {"data": data, "data_stage_flops": flops, "candidates": rows, "full_flops": full_flops,
           "damoc_train_flops": train_flops, "damoc_overhead_flops": overhead,
           "speedup_flops": _ratio(full_flops, train_flops + overhead),
           "speedup_flops_training_only": _ratio(full_flops, train_flops),
           "data_stage_flops_share": _ratio(overhead, train_flops),
           "notes": sorted(set(notes)), **({"rounds": staged} if staged else {})}
    if test:
        evaluation = _evaluation(route, rows, plan, measured, test, train_flops)
        damoc_flops = train_flops + overhead
        full_total = full_flops + evaluation["full_eval_flops"]
        out |= {"test_examples": len(test), **evaluation,
                "speedup_flops_with_evaluation": _ratio(full_total, damoc_flops + evaluation["damoc_eval_flops"])}
        if "damoc_eval_flops_best_case" in evaluation:
            out["speedup_flops_with_evaluation_best_case"] = _ratio(
                full_total, damoc_flops + evaluation["damoc_eval_flops_best_case"])
    if throughput is not None:
        out["throughput_flops_per_second"] = throughput
        out["full_hours"] = full_flops / throughput / 3600
        out["damoc_hours"] = (train_flops + overhead) / throughput / 3600
    return _finite(out)


def _check(examples: list[Example], n_examples: int | None, throughput: float | None) -> None:
    if throughput is not None and not (math.isfinite(throughput) and throughput > 0):
        raise DamocError(f"--throughput {throughput}: give the FLOP/s your device achieves, a positive finite number "
                         "(e.g. 1e14)")
    if n_examples is not None and (isinstance(n_examples, bool) or n_examples < 1):
        raise DamocError(f"--examples {n_examples}: give a count of at least 1")
    if not examples:
        raise DamocError("no training examples to measure")


@dataclass
class _Route:
    """The settings a `select` run prices by: which stages run, on how many examples, kept how much."""

    config: SelectConfig
    shapes: dict[str, Shape]
    n_all: int  # training examples priced (the user's count, or the data's)
    scale: float  # n_all over the examples measured
    n_kept: int  # what the filter keeps; adaptive orders and trains on growing prefixes of all of them
    ratio: float  # share of each context compression keeps
    untrained: bool  # zero-shot: no data stage, no training, each model scored as it is
    merged: bool  # sequential evaluation scores the kept copy, its adapters merged

    @classmethod
    def of(cls, config: SelectConfig, examples: list[Example], n_examples: int | None) -> _Route:
        shapes = {c.model: shape(c.model) for c in config.candidates}  # an unknown model fails before any work
        n_all = n_examples or len(examples)
        f = config.filter
        n_kept = resolve_budget(n_all, None if f.budget else f.rate, f.budget) \
            if f is not None and config.strategy != "adaptive" else n_all
        return cls(config, shapes, n_all, n_all / len(examples), n_kept,
                   config.compress.ratio if config.compress is not None else 1.0,
                   config.strategy == "zero-shot",
                   config.eval.strategy == "sequential" and config.strategy in ("fixed", "halving"))

    @property
    def filter(self):
        return None if self.untrained else self.config.filter

    @property
    def compress(self):
        return None if self.untrained else self.config.compress

    @property
    def prune(self):
        return None if self.untrained else self.config.prune


def _data_stage(route: _Route, examples: list[Example]) -> tuple[dict, dict, list[str]]:
    """The filter's and compression's forward passes (FLOPs by stage), what they see, and notes."""
    notes = ["zero-shot: nothing is trained; each model is scored once on every question"] if route.untrained else []
    data: dict = {"input_examples": route.n_all, "kept_examples": 0 if route.untrained else route.n_kept}
    flops = {"filter": 0.0, "compress_surprisal": 0.0, "compress_bertscore": 0.0}
    if route.filter is not None:
        flops["filter"], data["filter_tokens"] = _filter_cost(route.filter, examples, route.scale, route.n_kept)
    c = route.compress
    if c is not None:
        tok, _ = tokenizer_for(c.scorer)
        context = _mean([x.context for x in lengths(tok, examples)]) * route.n_kept
        flops["compress_surprisal"] = shape(c.scorer).forward_flops(context)
        bert_tok, _ = encoder_tokenizer(c.bert_model)
        bert_context = _mean([min(len(x), 512) for x in bert_tok([e.context for e in examples])["input_ids"]]) \
            * route.n_kept
        flops["compress_bertscore"] = shape(c.bert_model, causal=False).forward_flops(bert_context) * (1 + route.ratio)
        data["scorer_context_tokens"] = context
        if c.rewriter is not None:
            notes.append("LLM rewriting is on: its generation is not priced")
    return flops, data, notes


def _plan(route: _Route) -> list[dict]:
    """The rounds a staged strategy trains in; none for one that trains every candidate once."""
    config = route.config
    if config.strategy == "halving":
        return halving_plan(len(config.candidates), route.n_kept)
    if config.strategy == "adaptive":
        return adaptive_plan(config.adaptive, len(config.candidates), route.n_all)
    return []


@dataclass
class _Measured:
    """A model's token counts, shared by its methods: training lengths, and the test's scoring cost."""

    tok: object
    counted_with: str
    lengths: list[Lengths]
    test_cost: tuple[int, int] | None = None


def _candidate_rows(route: _Route, examples: list[Example], plan: list[dict], test: list[Example] | None,
                    notes: list[str]) -> tuple[list[dict], dict[str, list[float]], dict[str, _Measured]]:
    """Each candidate's training on both routes (and per round of a staged strategy), pruning's
    calibration pass, and its scoring on both routes when `test` is given."""
    config, p = route.config, route.prune
    rows, per_round, measured = [], {}, {}
    for cand in config.candidates:
        s = route.shapes[cand.model]
        if cand.model not in measured:
            tok, counted_with = tokenizer_for(cand.model)
            measured[cand.model] = _Measured(tok, counted_with, lengths(tok, examples))
        m = measured[cand.model]
        if m.counted_with != cand.model:
            notes.append(f"{cand.model}: tokens counted with {m.counted_with}'s tokenizer")
        ft = config.finetune.model_copy(update={"method": cand.method})
        r = ft.lora_r
        full = _run_tokens(m.lengths, route.n_all, ft, 1.0)
        cheap = _run_tokens(m.lengths, route.n_kept, ft, route.ratio) if not route.untrained else \
            {"examples": 0, "epochs": 0, "steps": 0, "tokens": 0.0, "loss_tokens": 0.0}
        removed = layer_cap(s.layers, p.max_fraction) if p is not None else 0
        prune_tokens = min(config.calibration_samples, route.n_kept) * _mean(
            [min(x.trained(ft.max_seq_len, route.ratio), p.max_len) for x in m.lengths]) if p is not None else 0.0
        evaluation = {}
        if test:
            if m.test_cost is None:
                m.test_cost = eval_cost(m.tok, test, ft.max_seq_len, config.eval_batch_size)
            tokens, head = m.test_cost
            evaluation = {"eval_tokens": tokens, "eval_head_positions": head,
                          "full_eval_flops": scoring_flops(s, tokens, head, cand.method, 0, r),
                          "damoc_eval_flops": scoring_flops(s, tokens, head, cand.method, removed, r,
                                                            unmerged=not route.merged)}
        if plan:
            per_round[cand.name] = [training_flops(s, cand.method, t["tokens"], t["loss_tokens"], removed, r)
                                    for t in (_run_tokens(m.lengths, k["examples"], ft, route.ratio) for k in plan)]
        rows.append({
            "candidate": cand.name, "model": cand.model, "method": cand.method, "shape_from": s.source,
            "tokens_counted_with": m.counted_with, "layers": s.layers, "layers_removed": removed,
            "full": {**full, "flops": training_flops(s, cand.method, full["tokens"], full["loss_tokens"], 0, r)},
            "damoc": {**cheap, "flops": training_flops(s, cand.method, cheap["tokens"], cheap["loss_tokens"],
                                                       removed, r),
                      "prune_tokens": prune_tokens, "prune_flops": 2.0 * s.body() * prune_tokens}, **evaluation})
    return rows, per_round, measured


def _staged(route: _Route, plan: list[dict], per_round: dict[str, list[float]],
            notes: list[str]) -> tuple[float, dict]:
    """A staged strategy's training FLOPs (round i trains its candidates on its share of the examples),
    with the least and most it can cost, since who survives a round is known only after it."""
    config = route.config
    rounds = [sorted(costs[i] for costs in per_round.values()) for i in range(len(plan))]
    if config.strategy == "halving":
        train_flops = sum(k["candidates"] * _mean(c) for k, c in zip(plan, rounds))
        low = sum(sum(c[:k["candidates"]]) for k, c in zip(plan, rounds))
        high = sum(sum(c[-k["candidates"]:]) for k, c in zip(plan, rounds))
        notes.append("halving: which candidates survive a round is not known before running; priced at the "
                     "mean candidate, with the range from the cheapest to the dearest survivors")
    else:  # adaptive: at most every candidate on every rung; at least on the rungs before any decision
        train_flops = high = sum(sum(c) for c in rounds)
        low = sum(sum(c) for c in rounds[:config.adaptive.min_rungs])
        notes.append(f"adaptive: priced as if no candidate were dropped and no pick made early; at least "
                     f"{config.adaptive.min_rungs} rungs run for every candidate")
    return train_flops, {"strategy": config.strategy, "rounds": plan, "train_flops_low": low,
                         "train_flops_high": high}


def _evaluation(route: _Route, rows: list[dict], plan: list[dict], measured: dict[str, _Measured],
                test: list[Example], train_flops: float) -> dict:
    """Scoring on both routes: every candidate fully trained on every question; damoc's candidates as
    its strategy scores them (at worst, every question; `--eval.budget` caps that), and its zero-shot pass
    of each model."""
    config = route.config
    full_eval = sum(r["full_eval_flops"] for r in rows)
    # the zero-shot pass evaluates each model once, unpruned, on the first zero_shot_questions questions
    # (adaptive scores only its first eval_questions, the zero-shot pass among them)
    asked = config.adaptive.eval_questions if config.strategy == "adaptive" else len(test)
    share = 1.0 if route.untrained else min(config.zero_shot_questions or len(test), asked, len(test)) / len(test)
    zero = (share * sum(route.shapes[model].forward_flops(m.test_cost[0], head_tokens=m.test_cost[1])
                        for model, m in measured.items())
            if config.zero_shot or route.untrained else 0.0)
    # halving scores every round's survivors, adaptive every rung's candidates on its first questions
    scorings = sum(k["candidates"] for k in plan) if plan else len(rows)
    per_scoring = _mean([r["damoc_eval_flops"] for r in rows])
    if config.strategy == "adaptive":
        q = min(config.adaptive.eval_questions, len(test))
        first = {model: eval_cost(m.tok, test[:q], config.finetune.max_seq_len, config.eval_batch_size)
                 for model, m in measured.items()}
        per_scoring = _mean([scoring_flops(route.shapes[r["model"]], *first[r["model"]], r["method"],
                                           r["layers_removed"], config.finetune.lora_r) for r in rows])
    candidates_eval = 0.0 if route.untrained else scorings * per_scoring
    first_batch = candidates_eval * min(config.eval.first, len(test)) / len(test)
    capped = config.eval_budget_applies
    if capped:
        # no batch after the first takes evaluation past the budget (the first always runs)
        candidates_eval = min(candidates_eval, max(first_batch, config.eval.budget * train_flops))
    out = {"full_eval_flops": full_eval, "damoc_eval_flops": candidates_eval + zero, "zero_shot_eval_flops": zero}
    if capped:
        out["eval_budget"] = config.eval.budget  # the cap priced above (the printout names it only then)
    if route.merged:
        # at best every candidate but one is dropped after the first batch; at worst none is (the above)
        out["damoc_eval_flops_best_case"] = first_batch + zero
    return out


def _ratio(a: float, b: float) -> float | None:
    """a / b, or None (unknown: JSON's null) where b is zero."""
    return a / b if b else None


def _finite(value):
    """`value` with every non-finite float as None: JSON has no NaN or Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
