"""Recovery data for a pruned model: choose the instruction samples that best restore it.

paser.py        the recovery methods behind one registry (`paser`, `random`, `length`, `ifd`);
                PASER (arXiv 2502.12594) read top to bottom, and the parts it is built from
cluster.py      S2RIC clusters of the pool's sentence embeddings, without an N x N matrix
degradation.py  Jensen-Shannon divergence between the original and pruned models, per sample
budget.py       the budget shared among clusters in proportion to their degradation
concepts.py     RAKE-style concept phrases and the concept-consistency graph
pool.py         the instruction pool (`bundled:mix` or an Alpaca file) and each sample's source
targets.py      `--targets self`: the original model's own (cached) answers to the chosen prompts
compare.py      recovery runs compared item by item (paired bootstrap over held-out items)
run.py          `damoc recover`: the pool, the budget (samples or answer tokens), the selection, the
                targets, then (with `train`) LoRA recovery scored
"""

from damoc.recovery.budget import allocate_budget
from damoc.recovery.concepts import ConceptGraph, extract_concepts
from damoc.recovery.degradation import sample_jsd

__all__ = ["ConceptGraph", "allocate_budget", "extract_concepts", "sample_jsd"]
