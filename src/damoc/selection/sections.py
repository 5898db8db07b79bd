"""The sections of `results.json` that a strategy adds (halving's rounds, adaptive's rungs and fits,
sequential evaluation's looks), and the base every results model shares: kept apart from
damoc.selection.results so each file reads as one schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class HalvingRound(Record):
    round: int
    examples: int
    ranking: list[str]
    kept: list[str]
    questions: int | None = None  # test questions each candidate of the round was scored on (older runs: none)
    stopped: str = ""


class Halving(Record):
    rounds: list[HalvingRound] = Field(default_factory=list)
    evaluation: str = "full"  # runs made before halving scored in batches scored every question
    note: str = ""


class Fit(Record):
    law: str
    params: dict[str, float] = Field(default_factory=dict)
    curve: list[list[float]] = Field(default_factory=list)
    predicted_answer_bpb_full: float
    loo_error: float | None = None


class Rung(Record):
    rung: int
    examples: int
    candidates: list[str] = Field(default_factory=list)
    prob_best: dict[str, float] | None = None


class Dropped(Record):
    rung: int
    prob_best: float


class Adaptive(Record):
    note: str = ""
    stopped: str = ""
    train_size: int = 0
    rungs: list[Rung] = Field(default_factory=list)
    fits: dict[str, Fit] = Field(default_factory=dict)
    dropped: dict[str, Dropped] = Field(default_factory=dict)


class Sequential(Record):
    """Sequential evaluation (eval.strategy sequential): the looks, and the questions each candidate saw."""

    looks: list[int] = Field(default_factory=list)
    z: float = 0.0
    alpha: float = 0.05
    margin: float = 0.0
    settle: float = 0.0  # runs made before the settled stop have none: it was off
    budget: float = 0.0  # nor before the evaluation budget
    questions: dict[str, int] = Field(default_factory=dict)
    dropped: dict[str, int] = Field(default_factory=dict)
    stopped: str = ""
    note: str = ""
