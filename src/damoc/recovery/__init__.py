"""PASER: choose the instruction data that best recovers a pruned model (arXiv 2502.12594).

budget.py       the budget shared among clusters in proportion to their degradation
concepts.py     RAKE-style concept phrases and the concept-consistency graph
degradation.py  Jensen-Shannon divergence between the original and pruned models, per sample
"""

from damoc.recovery.budget import allocate_budget
from damoc.recovery.concepts import ConceptGraph, extract_concepts
from damoc.recovery.degradation import sample_jsd

__all__ = ["ConceptGraph", "allocate_budget", "extract_concepts", "sample_jsd"]
