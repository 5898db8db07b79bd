"""Every cached result keeps its key across refactors: the candidate keys of a set of run configs,
recorded with the code of 2026-12-05 (2d0920f; tests/assets/keys-2026-12-05.json), are made again.
(Local-folder candidates now also key on their weights' files, on purpose: those are not in the set.)"""

from __future__ import annotations

import json
from pathlib import Path

from damoc.finetune import FinetuneConfig
from damoc.selection.candidate import Candidate, candidate_key
from damoc.selection.config import BaselineConfig, FilterSettings, SelectConfig

RECORDED = json.loads((Path(__file__).parent / "assets" / "keys-2026-12-05.json").read_text())


def test_cached_results_keep_their_keys():
    cands = [Candidate(model=m, method=meth) for m in ("bundled:smollm2-135m-instruct", "bundled:gemma3-270m",
                                                       "Qwen/Qwen2.5-0.5B") for meth in ("lora", "full")]
    whole = FilterSettings(options={"pool_factor": None})  # GraphCut over all the data, as when recorded
    configs = {
        "select-default": SelectConfig(task="nq-open", candidates=cands, filter=whole),
        "select-variant": SelectConfig(task="asdiv", candidates=cands, train_limit=1000, test_limit=300, prune=None,
                                       filter=FilterSettings(method="random", rate=0.2), seed=3,
                                       finetune=FinetuneConfig(max_seq_len=112, batch_size=8, micro_batch_size=4)),
        "select-halving": SelectConfig(task="siqa", candidates=cands, strategy="halving", filter=whole),
        "baseline": BaselineConfig(task="nq-open", candidates=cands, train_limit=1000, test_limit=1000,
                                   generation=False,
                                   finetune=FinetuneConfig(max_seq_len=96, batch_size=8, micro_batch_size=4)),
    }
    now = {name: {f"{c.model} {c.method}": candidate_key(cfg, c) for c in cands} for name, cfg in configs.items()}
    assert now == RECORDED
    # the data stage keys alike: a config from before the pool was written in (options {}) and one asking for all
    # the data find the same cached data; a pooled one does not
    from damoc.selection.data import data_key

    before = configs["select-default"].model_copy(
        update={"filter": configs["select-default"].filter.model_copy(update={"options": {}})})
    assert data_key(before, "nq-open") == data_key(configs["select-default"], "nq-open")
    assert candidate_key(before, cands[0]) == candidate_key(configs["select-default"], cands[0])
    # a pooled GraphCut is never taken for a run cached over all the data
    pooled = SelectConfig(task="nq-open", candidates=cands, filter=FilterSettings(options={"pool_factor": 2}))
    assert all(candidate_key(pooled, c) != RECORDED["select-default"][f"{c.model} {c.method}"] for c in cands)
    assert data_key(pooled, "nq-open") != data_key(before, "nq-open")
