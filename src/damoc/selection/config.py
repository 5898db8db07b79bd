"""The settings of a run, each defined once: `BaselineConfig` (full fine-tuning of every candidate)
and `SelectConfig` (the same plus DaMoC's three compression levers and a strategy). Everything
in them that decides a candidate's figures is hashed into its cache key (candidate.candidate_key)."""

from __future__ import annotations

import inspect
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from damoc.compat import ADDED_LATER, strategy_named
from damoc.finetune import FinetuneConfig
from damoc.layers import PruneConfig
from damoc.selection.adaptive import AdaptiveSettings
from damoc.selection.candidate import Candidate
from damoc.tasks import TaskSource
from damoc.tokens import CompressConfig

# The sections a run's `seed` decides unless they were given their own (BaselineConfig's validator).
SEEDED_SECTIONS = ("finetune", "compress", "prune")


class BaselineConfig(TaskSource):
    """Everything that decides a baseline run's figures; hashed for caching."""

    # given on the command line as --models x --methods (cli/runs.py), not as a flag of its own name
    candidates: list[Candidate] = Field(min_length=1, json_schema_extra={"flag": "--models"})
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    train_limit: int | None = Field(None, ge=1, description="train on a seeded sample of N training examples")
    test_limit: int | None = Field(None, ge=1, description="evaluate on the first N of the (fixed, stratified) "
                                   "test split")
    eval_batch_size: int = Field(8, ge=1, description="examples per evaluation forward pass")
    max_new_tokens: int = Field(64, ge=1, description="generation length for generative tasks")
    generation: bool = Field(True, description="generative tasks: also generate answers for ROUGE-L "
                             "(--no-generation: answer bits per byte only)")
    seed: int = Field(0, description="the run's seed: the training sample, training, compression and pruning")
    allow_pickle: bool = Field(False, description="also load .bin/.pt weights (pickle can run code: only "
                               "for files you trust)")
    trust_remote_code: bool = Field(False, description="run a model repository's own Python code")
    dtype: str = Field("auto", description="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16 or float16")
    quantization: Literal["none", "4bit"] = Field("none", json_schema_extra=ADDED_LATER, description=(
        "4bit: load each candidate in NF4 and train LoRA adapters on it (QLoRA; CUDA, pip install "
        "'damoc[gpu]'). Keeps a 7-8B candidate within one GPU"))

    @model_validator(mode="after")
    def _seeds_follow_the_run(self) -> BaselineConfig:
        """One `seed` decides a run: training, compression and pruning take it unless their own
        seed was given. (A data file's split keeps its own: the test set must not move with it.)"""
        for name in SEEDED_SECTIONS:
            section = getattr(self, name, None)
            if section is not None and "seed" not in section.model_fields_set and section.seed != self.seed:
                setattr(self, name, section.model_copy(update={"seed": self.seed}))
        return self

    @model_validator(mode="after")
    def _check(self) -> BaselineConfig:
        from damoc.finetune.methods import get_method

        if self.quantization != "none" and any(not get_method(c.method).quantized for c in self.candidates):
            raise ValueError("quantization 4bit trains adapters on frozen 4-bit weights (QLoRA): give every candidate "
                             "method lora or dora")
        seen: dict[tuple, Candidate] = {}
        for c in self.candidates:
            if c.identity in seen:
                first = seen[c.identity]
                same = "" if first.model == c.model else f" ({first.model!r} and {c.model!r} are the same model)"
                raise ValueError(f"duplicate candidates: {c.model} {c.method}{same}")
            seen[c.identity] = c
        return self


class EvalSettings(BaseModel):
    """How the compressed candidates are evaluated (the truth side and `baseline` always score every
    question). sequential: growing batches of the same questions, the clearly worse dropped, stopped
    when the decision is made (damoc.selection.sequential; the fixed strategy, and each round of
    halving until its better half is decided; adaptive scores its own rungs). It keeps each
    trained candidate on disk (as large as the model) until the decision, then removes the copies.
    The default since 2026-12-06: on the zoo it kept full evaluation's pick on every task measured
    (bench/results/sequential-eval.json; zoo-nq-open.json's `no-budget` row, the defaults before the
    budget, beside `full-eval`) at a fraction of its evaluation FLOPs. The budget (since 2026-12-07) stops
    it earlier and ties more often; its evidence is bench/results/budget-replay.json. Old results were made
    without it: `eval` is in no cache key, so they are reused as they are."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    strategy: Literal["full", "sequential"] = Field("sequential", description=(
        "full: every candidate on every test question; sequential: only as many as the decision needs"))
    first: int = Field(100, ge=2, description="questions in the first batch (sequential)")
    growth: float = Field(2.0, gt=1, description="each batch this many times the questions before it")
    alpha: float = Field(0.05, gt=0, lt=1, description="the chance of ever dropping a candidate as good as the "
                         "best (Bonferroni over batches and pairs)")
    margin: float = Field(0.0, ge=0, description=(
        "a difference this small counts as a tie, in the primary metric's units (accuracy as a fraction, or "
        "bits per byte), however many paired SE it is: the verdict ties it, sequential evaluation does not drop "
        "it, and a run stops when all left are within it (0: ties by paired SE only)"))
    settle: float = Field(0.05, ge=0, lt=1, json_schema_extra=ADDED_LATER, description=(
        "also stop once the pick is settled: scoring the rest would change it with a predictive probability "
        "below this against every other candidate (0: off; sequential.settled)"))
    # 0.5: in the zoo, replayed on 24 runs then tested on 8 fresh ones (bench/budget_replay.py), every run
    # >= 8x cheaper than fine-tuning every candidate with evaluation counted, and no pick left the truth's tie set
    budget: float = Field(0.5, ge=0, json_schema_extra=ADDED_LATER, description=(
        "also stop before a batch that would take the compressed candidates' evaluation FLOPs past this many "
        "times their training FLOPs (each priced at its first batch's cost per question; the first batch always "
        "runs), and decide on the questions scored; 0: no cap. The fixed strategy with sequential evaluation "
        "only"))


class FilterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: str = Field("graphcut", json_schema_extra={"registry": "damoc.filtering.selectors:SELECTORS"},
                        description="data selector (see `damoc filter --help`)")
    rate: float | None = Field(0.1, gt=0, le=1, description="share of the training data kept")
    budget: int | None = Field(None, ge=1, description="or a count of training examples kept (instead of rate)")
    options: dict = Field(default_factory=dict, description=(
        "selector parameters, e.g. lam=0.3 (GraphCut); GraphCut's pool_factor (its default where not given; "
        "none: all the data) is written in"))

    @model_validator(mode="after")
    def _rate_or_budget(self) -> FilterSettings:
        if self.budget is not None and "rate" not in self.model_fields_set:
            self.rate = None  # a budget alone replaces the default rate
        if (self.rate is None) == (self.budget is None):
            raise ValueError("give exactly one of rate (a share) or budget (a count)")
        return self

    @model_validator(mode="after")
    def _options_fit(self) -> FilterSettings:
        """The selector's options, checked here so that a bad one is one line before any work (a run file's
        options outlive a `--filter.method` flag, and another selector's would fail mid-run). GraphCut's pool
        is written in where not given, so that the stored config says which pool a run used and a run cached
        over all the data is never taken for one that pooled, whatever the default (keys:
        damoc.compat.whole_data_unkeyed). `pool_factor=none` (or YAML's null) means all the data; a whole
        number is kept as an int, so 2.0 keys as 2 does."""
        from damoc.filtering.selectors import GRAPHCUT_POOL_FACTOR, SELECTORS

        if self.method == "graphcut":
            pool = self.options.get("pool_factor", GRAPHCUT_POOL_FACTOR)
            if isinstance(pool, str) and pool.strip().lower() in ("none", "null"):
                pool = None
            elif isinstance(pool, float) and pool.is_integer():
                pool = int(pool)
            self.options = {**self.options, "pool_factor": pool}
        cls = SELECTORS.get(self.method)
        known = set(inspect.signature(cls).parameters)
        unknown = sorted(map(str, set(self.options) - known))
        if unknown:
            takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
            raise ValueError(f"{self.method} has no option {', '.join(unknown)} ({takes})")
        cls(**self.options)  # a value out of range: ValueError, as a settings error
        return self

    @field_validator("method")
    @classmethod
    def _known_selector(cls, name: str) -> str:
        from damoc.filtering.selectors import SELECTORS

        return SELECTORS.check(name)


class SelectConfig(BaselineConfig):
    """A baseline config plus the three compression levers; `None` turns a lever off."""

    filter: FilterSettings | None = Field(default_factory=FilterSettings)
    compress: CompressConfig | None = Field(default_factory=CompressConfig)
    prune: PruneConfig | None = Field(default_factory=PruneConfig)
    # 8, 16, 32 and 64 texts chose the same layers on NQ-open and ASDiv for both bundled models
    # (bench/results/prune-calibration.json); 16 keeps a margin at half the cost of the former 32.
    calibration_samples: int = Field(16, ge=1, description="texts the layer similarity is measured on (select: the "
                                     "compressed training texts; prune: --calibration's)")
    adaptive: AdaptiveSettings = Field(default_factory=AdaptiveSettings, json_schema_extra=ADDED_LATER)
    strategy: str = Field("fixed", json_schema_extra={**ADDED_LATER,
                                                      "registry": "damoc.selection.strategies:STRATEGIES"},
                          description=(
        "fixed: every candidate once on the filtered data; halving: successive halving; adaptive: learning "
        "curves on growing prefixes of the selector's order over the whole training split, extrapolated to its "
        "full size, candidates raced out, stopped when one is confidently best; zero-shot: no training, each "
        "model evaluated as it is (the free guess; methods of one model tie)"))
    eval: EvalSettings = Field(default_factory=EvalSettings, json_schema_extra=ADDED_LATER)
    zero_shot: bool = Field(True, json_schema_extra=ADDED_LATER, description=(
        "also evaluate each model untrained on the same questions, show that ranking beside this run's and say "
        "where they disagree (its cost is counted); --no-zero-shot skips it"))
    # The models' untrained gaps are wide (0.2-0.3 bits per byte between the zoo's two, beside a
    # standard error near 0.03 on 1,000 questions), so a few hundred questions order them; on the whole
    # test split the pass cost twice the compressed training in the zoo (bench/results/zoo-nq-open.json).
    zero_shot_questions: int | None = Field(200, ge=2, json_schema_extra=ADDED_LATER, description=(
        "the zero-shot pass beside a run scores the first N test questions (none: all); `--strategy "
        "zero-shot` always scores them all"))
    halving: bool = Field(False, description="successive halving: all candidates on 1/n of the compressed data, "
                          "the better half on twice as much, until one is left")

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        from damoc.selection.strategies import STRATEGIES

        return STRATEGIES.check(name)

    @model_validator(mode="after")
    def _one_strategy(self) -> SelectConfig:
        self.strategy = strategy_named(self.halving, self.strategy)  # `halving: true`, the older switch
        self.halving = self.strategy == "halving"
        return self

    @model_validator(mode="after")
    def _quantized_layers_stay_as_loaded(self) -> SelectConfig:
        if self.quantization != "none" and self.prune is not None and self.prune.merge != "none":
            raise ValueError(f"the {self.prune.merge} layer merge rewrites weights, which 4-bit weights cannot take: "
                             "use prune merge none (or no pruning) with quantization 4bit")
        return self

    @property
    def eval_budget_applies(self) -> bool:
        """Whether `--eval.budget` caps this run's evaluation: only the fixed strategy's sequential evaluation
        (halving's rounds stop when their better half is decided; full evaluation scores every question)."""
        return self.strategy == "fixed" and self.eval.strategy == "sequential" and self.eval.budget > 0

    def unused_settings(self) -> list[str]:
        """Evaluation settings the user gave that this run will not use: said, not dropped in silence (a run
        file written for one strategy is often reused with another). `margin` is always used (the verdict)."""
        given = sorted(self.eval.model_fields_set - {"margin"})
        sequential = [f for f in given if f != "strategy"]

        def flags(fields: list[str]) -> str:
            return ", ".join(f"--eval.{f}" for f in fields)

        if self.strategy in ("adaptive", "zero-shot") and given:
            why = ("scores its own rungs' questions (--adaptive.*)" if self.strategy == "adaptive"
                   else "scores every test question once, untrained")
            return [f"{flags(given)}: not used, the {self.strategy} strategy {why}"]
        if self.eval.strategy == "full" and sequential:
            return [f"{flags(sequential)}: not used with --eval.strategy full (every question is scored)"]
        if "budget" in given and self.eval.budget and not self.eval_budget_applies:
            why = " (halving rounds stop when their better half is decided)" if self.strategy == "halving" else ""
            return [f"--eval.budget: not used, the evaluation budget applies to the fixed strategy only{why}"]
        return []

    def baseline(self) -> BaselineConfig:
        return BaselineConfig(**self.model_dump(include=set(BaselineConfig.model_fields)))
