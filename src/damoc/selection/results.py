"""The typed schema of a run's `results.json` (select and baseline), read by every renderer.

The pipeline writes plain dicts (JSON); whoever reads one (the terminal, report.md, report.html,
`bench/`) goes through `load_results` / `SelectResults.model_validate`, so a field is named in one
place and a renderer reads attributes, not string keys. Every model keeps unknown fields
(`extra="allow"`): results written by older or newer versions still load, and nothing is lost on
a round trip. Fields added over time have defaults, so a results.json written before them (the
fixtures in tests/assets/results-2026-12-05/) loads too.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from damoc.selection.candidate import display_name
from damoc.selection.sections import Adaptive, Halving, Record, Sequential

__all__ = ["Adaptive", "Halving", "Record", "SelectResults", "Sequential", "load_results"]


class PruneInfo(Record):
    removed: list[int] = Field(default_factory=list)
    layers_before: int = 0
    layers_after: int = 0
    similarity: list[float] = Field(default_factory=list)
    seconds: float = 0.0
    forward_flops: float = 0.0


class CandidateRun(Record):
    """One candidate's outcome (a results.json entry or a result.json)."""

    model: str
    method: str
    options: dict = Field(default_factory=dict)
    status: str
    metrics: dict[str, float | None] = Field(default_factory=dict)
    error: str | None = None
    rank: int | None = None
    train_seconds: float = 0.0
    train_flops: float = 0.0
    eval_seconds: float = 0.0
    eval_examples: int | None = None
    eval_flops: float | None = None
    load_seconds: float = 0.0
    prune: PruneInfo | None = None
    dropped_at_rung: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def name(self) -> str:
        return display_name({"model": self.model, "method": self.method, "options": self.options})

    @property
    def short(self) -> str:
        """For plot labels: the model's last path part, the method on a second line."""
        return f"{self.model.split(':')[-1].split('/')[-1]}\n{self.method}"


class Pair(Record):
    a: str
    b: str
    accuracy_diff: float = 0.0
    accuracy_diff_se: float = 0.0
    bpb_diff: float = 0.0
    bpb_diff_se: float = 0.0


class Confidence(Record):
    samples: int = 0
    prob_best: dict[str, float] = Field(default_factory=dict)
    pairs: list[Pair] = Field(default_factory=list)


class LighterMethod(Record):
    """The pick's own model with its best other method, when the pick is a full fine-tune."""

    candidate: str
    metric: str
    diff: float  # positive: behind the pick (ahead only where the pick's tie set leaves it out)
    se: float
    questions: int | None = None  # where measured on fewer questions than the pick's (dropped early)


class Verdict(Record):
    tie_set: list[str]
    tied: bool
    recommended: str
    rule: str = ""
    best_by_metric: str | None = None
    lighter_method: LighterMethod | None = None
    margin: float = 0.0  # eval.margin: a difference this small ties, however many SE it is


class Cost(Record):
    train_seconds: float = 0.0
    train_flops: float = 0.0
    prune_seconds: float = 0.0
    prune_flops: float = 0.0
    eval_seconds: float = 0.0
    load_seconds: float = 0.0
    training_runs: int = 0
    eval_flops: float | None = None
    zero_shot_eval_seconds: float | None = None
    zero_shot_eval_flops: float | None = None


class Agreement(Record):
    """How a ranking compares with another (validation.compare_rankings)."""

    chosen: str
    best: str
    top1_match: bool
    kendall_tau: float | None = None
    spearman_rho: float | None = None
    regret: float | None = None


class Judged(Record):
    """A pick judged against a truth with power (validation.judge)."""

    chosen: str
    truth_tie_set: list[str]
    in_tie_set: bool
    regret: float
    regret_se: float
    separated_pairs: int = 0
    separated_pairs_agreement: float | None = None
    method_pairs: int = 0
    method_pairs_agreement: float | None = None


class Validation(Record):
    by_rank: Agreement
    pick: str | None = None  # the recommendation judged (the verdict's), where runs recorded it
    regret: float | None = None  # the pick's
    speedup_wall: float | None = None
    speedup_wall_note: str = ""
    speedup_flops: float | None = None
    speedup_flops_training_only: float | None = None
    speedup_flops_with_evaluation: float | None = None
    full_confidence: Confidence | None = None
    judged: Judged | None = None


class Comparison(Record):
    same_first_model: bool
    zero_shot_first: str | None = None
    trained_first: str | None = None
    pairs_reordered: list[str] = Field(default_factory=list)
    models_compared: int = 0


class ZeroShot(Record):
    note: str = ""
    ranking_models: list[str] = Field(default_factory=list)
    metrics: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    cost: dict[str, float] = Field(default_factory=dict)
    comparison: Comparison | None = None


class CompressStats(Record):
    context_token_ratio: float = 1.0
    share_passed_without_rewrite: float = 0.0
    share_rewritten: float = 0.0
    share_fell_back_milder: float = 0.0
    share_fell_back_original: float = 0.0
    bertscore_before: dict[str, float | None] = Field(default_factory=dict)
    bertscore_after: dict[str, float | None] = Field(default_factory=dict)


class DataStage(Record):
    input_examples: int | None = None
    output_examples: int | None = None
    filter: dict | None = None
    compress: CompressStats | None = None
    seconds: dict[str, float] = Field(default_factory=dict)
    forward_flops: float = 0.0


class RunResults(Record):
    """What select and baseline both write."""

    task: str
    primary_metric: str
    candidates: list[CandidateRun]
    train_examples: int = 0
    test_examples: int = 0
    majority_accuracy: float | None = None
    config: dict = Field(default_factory=dict)

    @property
    def ranked(self) -> list[CandidateRun]:
        return [c for c in self.candidates if c.ok]


class SelectResults(RunResults):
    data: DataStage = Field(default_factory=DataStage)
    ranking_bpb: list[str] = Field(default_factory=list)
    confidence: Confidence | None = None
    verdict: Verdict | None = None
    warnings: list[str] = Field(default_factory=list)
    cost: Cost = Field(default_factory=Cost)
    zero_shot: ZeroShot | None = None
    validation: Validation | None = None
    validation_skipped: str | None = None
    halving: Halving | None = None
    adaptive: Adaptive | None = None
    sequential: Sequential | None = None


def load_results(path: str | Path) -> SelectResults:
    """A results.json, typed (a baseline's loads too: its select-only fields stay at their defaults)."""
    from damoc.io import read_json

    return SelectResults.model_validate(read_json(path))
