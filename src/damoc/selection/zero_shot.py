"""The zero-shot ranking: every candidate's model evaluated as it is, untrained, on the run's test
questions. It is the free guess a selection has to beat.

`select --strategy zero-shot` ranks by it alone (methods of one model cannot be told apart without
training, so they tie); every other `select` run computes it beside its own ranking, counts its
cost, and says where the two disagree, so a user learns whether training changed the answer.
Each model is evaluated once (cached in OUT/zero-shot/, keyed like a candidate).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from damoc.runinfo import stable_hash
from damoc.selection.candidate import Candidate, candidate_key, is_ok, model_identity, rank
from damoc.selection.launch import Job, LaunchSettings, launch
from damoc.selection.runner import evaluate_kept

NOTE = ("zero-shot: each model evaluated untrained on the same test questions; the methods of one model cannot be "
        "told apart without training, so they share its figures and tie")


def _per_model(candidates: list[Candidate]) -> dict[str, Candidate]:
    """One candidate per model (the first method given), by the model's identity."""
    out: dict[str, Candidate] = {}
    for c in candidates:
        out.setdefault(model_identity(c.model), c)
    return out


def zero_shot(config, task, test: list, out: Path, progress: bool = False, notify=None,
              launch_settings: LaunchSettings | None = None) -> dict:
    """Every model's untrained figures, its ranking and its cost; `candidates` ranks every candidate
    by its model's figures (methods of one model tied)."""
    models = _per_model(config.candidates)
    jobs = [Job(c, out / "zero-shot" / c.slug,
                stable_hash({"zero_shot": candidate_key(config, c), "questions": [e.id for e in test]}),
                partial(evaluate_kept, config, c, task, test, c.model, progress)) for c in models.values()]
    # its events are its own ("zero-shot start", ...): nothing is trained, and a caller counting
    # candidate runs must not count these
    tell = notify or (lambda kind, info: None)
    results = launch(jobs, launch_settings, lambda kind, info: tell(f"zero-shot {kind}", info))
    by_model = {model_identity(r["model"]): r for r in results}
    ranked_models = [r for r in rank(task.primary_metric, [dict(r) for r in results]) if is_ok(r)]
    candidates = []
    for c in config.candidates:
        r = by_model[model_identity(c.model)]
        candidates.append({**c.label(), **{k: v for k, v in r.items() if k not in ("model", "method", "options")}})
    ranked = rank(task.primary_metric, candidates)
    ok = [r for r in results if is_ok(r)]
    return {"note": NOTE, "ranking_models": [r["model"] for r in ranked_models],
            "metrics": {r["model"]: r["metrics"] for r in ok},
            "failed": {r["model"]: r.get("error") for r in results if not is_ok(r)},
            "candidates": [{k: v for k, v in r.items() if k != "traceback"} for r in ranked],
            # every candidate reads its model's predictions: methods of one model tie in the bootstrap
            "folders": {c.name: str(out / "zero-shot" / models[model_identity(c.model)].slug)
                        for c in config.candidates},
            "cost": {"eval_seconds": sum(r.get("eval_seconds", 0.0) for r in ok),
                     "eval_flops": sum(r.get("eval_flops", 0.0) for r in ok),
                     "load_seconds": sum(r.get("load_seconds", 0.0) for r in ok), "models": len(ok)}}


def disagreements(zero: dict, ranked: list[dict]) -> dict:
    """Where the run's ranking (best candidate per model) and the zero-shot ranking of models differ:
    whether they put a different model first, and each pair of models they order differently."""
    first_of: dict[str, int] = {}
    for r in ranked:
        if is_ok(r):
            first_of.setdefault(model_identity(r["model"]), r["rank"])
    trained = sorted(first_of, key=first_of.get)
    untrained = [model_identity(m) for m in zero["ranking_models"] if model_identity(m) in first_of]
    trained = [m for m in trained if m in untrained]
    pos = {m: i for i, m in enumerate(untrained)}
    flipped = [(a, b) for i, a in enumerate(trained) for b in trained[i + 1:] if pos[a] > pos[b]]
    return {"same_first_model": bool(trained) and trained[0] == untrained[0],
            "zero_shot_first": untrained[0] if untrained else None, "trained_first": trained[0] if trained else None,
            "pairs_reordered": [f"{a} over {b}" for a, b in flipped], "models_compared": len(trained)}
