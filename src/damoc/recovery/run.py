"""`damoc recover`: choose the subset and write it, its summary and a report, atomically."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from damoc.io import write_json_atomic, write_jsonl_atomic, write_text_atomic
from damoc.runinfo import machine, versions


class RecoverConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    original: str
    pruned: str
    pool: str = "bundled:mix"
    budget: float = Field(0.2, gt=0, description="a share in (0, 1) of the pool, or a count")
    method: str = "paser"
    clusters: int | str = "auto"
    per_source: int = Field(500, ge=1, description="samples per source in the bundled pool")
    embedder: str = "bundled:minilm"
    max_len: int = Field(512, ge=8)
    batch_size: int = Field(4, ge=1)
    seed: int = 0


def run_recover(config: RecoverConfig, out: str | Path, progress: bool = True) -> dict:
    from damoc.recovery.paser import Context, resolve_budget, select_recovery
    from damoc.recovery.pool import load_pool, source_of

    out = Path(out)
    if isinstance(config.clusters, str) and config.clusters != "auto":
        from damoc.errors import DamocError

        raise DamocError(f"--clusters must be 'auto' or a number, got {config.clusters!r}")
    pool = load_pool(config.pool, config.per_source, config.seed)
    budget = resolve_budget(config.budget, len(pool))
    ctx = Context(pool=pool, budget=budget, seed=config.seed, original=config.original, pruned=config.pruned,
                  clusters=config.clusters, embedder=config.embedder, max_len=config.max_len,
                  batch_size=config.batch_size, progress=progress)
    selection = select_recovery(config.method, ctx)
    rows = []
    for i in selection.indices:
        e = pool[i]
        rows.append({"id": e.id, "source": source_of(e), **selection.per_sample.get(i, {}),
                     "prefix": e.prefix, "context": e.context, "suffix": e.suffix, "answer": e.answer,
                     "options": list(e.options), "label": e.label})
    sources: dict[str, int] = {}
    for r in rows:
        sources[r["source"]] = sources.get(r["source"], 0) + 1
    pool_sources: dict[str, int] = {}
    for e in pool:
        pool_sources[source_of(e)] = pool_sources.get(source_of(e), 0) + 1
    summary = {"method": config.method, "pool_size": len(pool), "budget": budget, "selected": len(rows),
               "selected_by_source": sources, "pool_by_source": pool_sources, **selection.summary,
               "config": config.model_dump(mode="json"), "machine": machine(), "versions": versions()}
    write_jsonl_atomic(out / "subset.jsonl", rows)
    from damoc.report.recovery import recover_html, recover_report

    markdown = recover_report(summary)
    write_text_atomic(out / "report.md", markdown)
    write_text_atomic(out / "report.html", recover_html(summary, markdown))
    write_json_atomic(out / "summary.json", {k: v for k, v in summary.items() if k not in ("map_2d", "labels")})
    return summary
