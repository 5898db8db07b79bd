"""Model specs, loading and the bundled-model catalog."""

from damoc.models.bundled import BUNDLED, damoc_home, home_cache_path, prepare_bundled
from damoc.models.loading import LoadOptions, load_model, load_tokenizer, model_fingerprint, resolve_spec

__all__ = ["BUNDLED", "LoadOptions", "damoc_home", "home_cache_path", "load_model", "load_tokenizer",
           "model_fingerprint", "prepare_bundled", "resolve_spec"]
