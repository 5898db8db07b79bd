"""Benchmark: how many calibration texts does layer pruning need? The layers `select` would remove
(similarity >= 0.85, at most 25%) from each bundled model, measured on 8, 16, 32 and 64 of the
zoo's training examples of each task: if the choice does not move, fewer texts cost less.

    OMP_NUM_THREADS=1 .venv/bin/python bench/prune_calibration.py   # -> bench/results/prune-calibration.json
"""

from __future__ import annotations

import torch
from _common import BUNDLED, RESULTS, envelope, write_json_atomic

from damoc.layers import PruneConfig
from damoc.layers.calibration import example_texts
from damoc.layers.similarity import choose_layers, layer_similarity
from damoc.models import load_model, load_tokenizer
from damoc.tasks import load_task
from damoc.tasks.sampling import sample_train

SIZES = (8, 16, 32, 64)


def main() -> None:
    config = PruneConfig()
    rows = []
    for task in ("nq-open", "asdiv"):
        train = sample_train(load_task(task).train, 1000, 0)[:100]  # the zoo's sample, its first 100
        for spec in BUNDLED:
            tok, model = load_tokenizer(spec), load_model(spec).eval()
            chosen = {}
            for n in SIZES:
                sim = layer_similarity(model, tok, example_texts(train[:n]), config.max_len, config.batch_size)
                chosen[n] = choose_layers(sim, config.threshold, config.max_fraction)
            rows.append({"task": task, "model": spec, "removed": {str(n): v for n, v in chosen.items()},
                         "same_for_every_size": all(v == chosen[SIZES[-1]] for v in chosen.values())})
            print(rows[-1], flush=True)
    write_json_atomic(RESULTS / "prune-calibration.json", {
        **envelope(rows=rows, threshold=config.threshold, max_fraction=config.max_fraction,
                   torch_threads=torch.get_num_threads(), load=True),
        "command": "python bench/prune_calibration.py"})


if __name__ == "__main__":
    main()
