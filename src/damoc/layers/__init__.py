"""Layer similarity, layer removal and merging of removed layers into retained ones."""

from damoc.layers.prune import PruneConfig, PruneResult, prune_model, save_pruned
from damoc.layers.similarity import choose_layers, layer_similarity

__all__ = ["PruneConfig", "PruneResult", "choose_layers", "layer_similarity", "prune_model", "save_pruned"]
