"""The typed summary of a `damoc recover` run (summary.json): what the terminal, report.md and
report.html read, by attribute rather than by string key. Fields the renderers do not read stay
in the file (extra fields are kept), so older and newer summaries load alike."""

from __future__ import annotations

from pydantic import Field

from damoc.selection.sections import Record


class Nll(Record):
    nll: float | None = None
    nll_se: float | None = None


class Scores(Record):
    """One model's neutral metrics on the held-out samples and the zero-shot tasks."""

    external_ppl: float | None = None
    external_ppl_se: float | None = None
    answer_nll: dict[str, Nll] = Field(default_factory=dict)  # "all", then per source
    accuracy: dict[str, float | None] = Field(default_factory=dict)
    avg_accuracy: float | None = None
    avg_accuracy_se: float | None = None
    ppl: float | None = None

    @property
    def nll(self) -> Nll:
        return self.answer_nll.get("all", Nll())


class Recovery(Record):
    original: Scores
    pruned: Scores
    recovered: Scores
    train_seconds: float
    distill_weight: float | None = None  # --targets distill
    teacher_flops: float = 0.0


class SelfTargets(Record):
    kept: int
    answer_tokens: int
    empty_dropped: int
    too_long_dropped: int
    cached: int
    generated: int
    generation_flops: float


class RecoverSummary(Record):
    method: str
    pool_size: int
    budget: int
    selected: int
    heldout: int
    dropped_too_long: int
    answer_tokens: int
    select_seconds: float
    targets: str = "data"
    selected_by_source: dict[str, int] = Field(default_factory=dict)
    pool_by_source: dict[str, int] = Field(default_factory=dict)
    config: dict = Field(default_factory=dict)
    self_targets: SelfTargets | None = None
    # PASER's clusters (absent for the other methods); a degradation not measured is null
    clusters: int | None = None
    rejected_by_concept_graph: int = 0
    shortfall_after_clusters: int = 0
    taken_despite_concept_graph: int = 0
    jsd_mean_pool: float | None = None
    jsd_mean_selected: float | None = None
    cluster_sizes: list[int] = Field(default_factory=list)
    cluster_degradation: list[float | None] = Field(default_factory=list)
    cluster_budget: list[int] = Field(default_factory=list)
    cluster_selected: list[int] = Field(default_factory=list)
    map_2d: list[list[float]] | None = None
    labels: list[int] | None = None
    recovery: Recovery | None = None
