"""Candidates trained once and scored on growing batches of the same test questions, with a rule
deciding after each batch which of them go on and whether to stop. The fixed strategy's rule picks one
(sequential.step and sequential.settled); successive halving's keeps the better part of a round
(sequential.part_decided and sequential.part_settled). Scoring is most of a selection's FLOPs, so
neither scores a question the decision does not need.

Each trained model is kept on disk between batches (as large as the model), then removed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from damoc.runinfo import stable_hash
from damoc.selection.candidate import candidate_key, display_name, is_ok
from damoc.selection.launch import Job, launch
from damoc.selection.runner import evaluate_kept
from damoc.selection.sequential import per_question

# (per-question scores of the candidates still scored, questions so far, training records by name)
# -> (the candidates to score on the next batch, why the run stops now, or "")
Look = Callable[[dict[str, np.ndarray], int, dict[str, dict]], tuple[list[str], str]]


@dataclass
class Batched:
    trained: dict[str, dict]  # name -> its training run's record (the first batch scored in it)
    records: dict[str, list[dict]]  # name -> its predictions on every question it was scored on
    runs: list[dict]  # every job's record, training runs first, each with its `eval_range`
    seen: dict[str, int]  # name -> how many questions it was scored on
    alive: list[str]  # the candidates the rule kept scoring to the end
    stopped: str
    failed: dict[str, dict]  # name -> the record of a later batch that failed (the candidate failed with it)

    def result(self, name: str, choice: bool, seed: int, where: Path) -> dict:
        """A candidate's record over every batch it was scored on (metrics from all its predictions, the
        questions it saw, what all its batches' scoring cost), its predictions written to `where`; or the
        record of the batch that failed it."""
        from damoc.evaluation.evaluate import metrics_of
        from damoc.io import write_jsonl_atomic

        if name in self.failed:
            return dict(self.failed[name])
        r = {k: v for k, v in self.trained[name].items() if k != "eval_range"}
        if is_ok(r):
            mine = [x for x in self.runs if display_name(x) == name]  # its training run and its later batches
            r.update({"metrics": metrics_of(self.records[name], choice, seed), "eval_examples": self.seen[name],
                      "eval_flops": sum(x.get("eval_flops") or 0.0 for x in mine),
                      "eval_seconds": sum(x.get("eval_seconds", 0.0) for x in mine)})
            write_jsonl_atomic(where / "predictions.jsonl", self.records[name])
        return r


def score_in_batches(ctx, candidates: list, train: list, folder: Path, plan: list[int], look: Look,
                     extra: dict | None = None) -> Batched:
    """Train `candidates` on `train` in `folder` and score them on the first `plan[0]` questions; then,
    while `look` neither stops nor drops them all, score those it keeps on the next batch."""
    config, task, scored = ctx.config, ctx.task, ctx.scored
    extra = extra or {}
    metric = "accuracy" if task.is_choice else "answer_bpb"
    trainers = ctx.jobs(candidates, train, folder, {**extra, "eval_questions": plan[0]}, test=scored[: plan[0]],
                        keep=True)
    first = [dict(r, eval_range=[0, plan[0]]) for r in launch(trainers, ctx.launch_settings, ctx.notify)]
    trained = {c.name: r for c, r in zip(candidates, first)}
    records = {c.name: read_predictions(folder / c.slug) for c, r in zip(candidates, first) if is_ok(r)}
    runs, alive = list(first), [c for c in candidates if c.name in records]
    seen, failed, stopped, previous = {}, {}, f"all {len(scored)} questions used", 0
    for i, n in enumerate(plan):
        if i:  # those still scored, on the next batch, from their kept models
            ctx.notify("stage", {"name": f"sequential evaluation: test questions {previous + 1}-{n}",
                                 "candidates": len(alive), "evaluating": True})
            batch_jobs = [Job(c, folder / c.slug / f"questions-{n}",
                              stable_hash({"key": candidate_key(config, c), **extra,
                                           "eval_questions": [previous, n]}),
                              partial(evaluate_kept, config, c, task, scored[previous:n], folder / c.slug / "model",
                                      ctx.progress)) for c in alive]
            _retrain_missing(batch_jobs, {c.name: j for c, j in zip(candidates, trainers)}, plan[0])
            # a batch scores the pruned model its training kept: its layers, for pricing the batch
            results = [dict(r, eval_range=[previous, n], layers_after=(trained[c.name].get("prune") or {}).get(
                "layers_after")) for c, r in zip(alive, launch(batch_jobs, ctx.launch_settings, ctx.notify))]
            for r in results:  # (a retrained batch cached before `rescored` was recorded)
                if r.get("retrained") and not r.get("rescored"):
                    r["rescored"] = [0, plan[0]]
            runs += results
            for c, r in zip(alive, results):
                if is_ok(r):
                    records[c.name] += read_predictions(folder / c.slug / f"questions-{n}")
                else:
                    failed[c.name] = r
            alive = [c for c, r in zip(alive, results) if is_ok(r)]
        previous = n
        seen.update({c.name: n for c in alive})
        keep, why = look({c.name: per_question(records[c.name], metric) for c in alive}, n, trained)
        alive = [c for c in alive if c.name in keep]
        if why:
            stopped = why
            break
    remove_kept(folder, candidates)
    return Batched(trained, records, runs, seen, [c.name for c in alive], stopped, failed)


def _retrain_missing(batch_jobs: list[Job], trainers: dict[str, Job], first: int) -> None:
    """Kept models are removed once a run has decided; a later run with other settings (more batches)
    may need one back. That batch's job then trains its candidate again first (seeded: the same
    weights on the same device and settings; a GPU's kernels need not be bitwise repeatable) and its
    stored result carries what the training cost (its first batch, scored again, in `rescored`), so a
    re-run from the cache reports it too."""
    from damoc.selection.launch import cached

    for job in batch_jobs:
        if cached(job) is None and not (job.folder.parent / "model").is_dir():
            job.run = partial(_trained_then_scored, trainers[job.candidate.name].run, job.run, first)


def _trained_then_scored(train, score, first: int) -> tuple[dict, list[dict]]:
    trained, _ = train()  # saves the kept model; its first-batch predictions are already on record
    record, predictions = score()
    return {**record, "evaluation_only": False, "retrained": True, "rescored": [0, first],
            "train_flops": trained["train_flops"],
            "train_seconds": trained["train_seconds"], "prune": trained.get("prune", {}),
            "eval_flops": (record.get("eval_flops") or 0.0) + (trained.get("eval_flops") or 0.0),
            "eval_seconds": record.get("eval_seconds", 0.0) + trained.get("eval_seconds", 0.0)}, predictions


def remove_kept(folder: Path, candidates: list) -> None:
    """The trained copies kept for later batches (pruned, merged; one per candidate, as large as the
    model) are removed once the decision is made: a run of 8B candidates would otherwise leave
    16 GB per candidate behind. Only folders damoc wrote (`damoc-finetune.json` inside) go."""
    import shutil

    for c in candidates:
        kept = folder / c.slug / "model"
        if (kept / "damoc-finetune.json").is_file():
            shutil.rmtree(kept, ignore_errors=True)


def read_predictions(folder: Path) -> list[dict]:
    from damoc.io import read_jsonl

    return read_jsonl(folder / "predictions.jsonl")
