"""The typed output of `damoc estimate` (damoc.selection.estimate), as the terminal reads it: by
attribute rather than by string key. `estimate` still returns the plain dict that `--json` prints;
fields the terminal does not read stay in it."""

from __future__ import annotations

from pydantic import Field

from damoc.selection.sections import Record


class FullRun(Record):
    tokens: float
    flops: float


class DamocRun(FullRun):
    steps: int
    prune_flops: float = 0.0


class CandidateCost(Record):
    candidate: str
    layers: int
    layers_removed: int = 0
    full: FullRun
    damoc: DamocRun


class DataCost(Record):
    input_examples: int
    kept_examples: int


class DataStageFlops(Record):
    filter: float = 0.0
    compress_surprisal: float = 0.0
    compress_bertscore: float = 0.0


class Round(Record):
    round: int
    candidates: int
    examples: int


class StagedCost(Record):
    strategy: str
    rounds: list[Round]
    train_flops_low: float
    train_flops_high: float


class Estimate(Record):
    candidates: list[CandidateCost]
    data: DataCost
    data_stage_flops: DataStageFlops
    full_flops: float
    damoc_train_flops: float
    damoc_overhead_flops: float
    speedup_flops: float | None = None
    speedup_flops_training_only: float | None = None
    data_stage_flops_share: float | None = None
    notes: list[str] = Field(default_factory=list)
    rounds: StagedCost | None = None  # halving's rounds, adaptive's rungs
    # with test questions
    test_examples: int | None = None
    full_eval_flops: float | None = None
    damoc_eval_flops: float | None = None
    speedup_flops_with_evaluation: float | None = None
    speedup_flops_with_evaluation_best_case: float | None = None  # sequential evaluation
    eval_budget: float | None = None  # the --eval.budget cap, where it applies (the fixed strategy)
    # with a throughput
    throughput_flops_per_second: float | None = None
    full_hours: float | None = None
    damoc_hours: float | None = None
