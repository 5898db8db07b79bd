"""Token compression: surprisal scoring, word dropping, BERTScore check, rewriting."""

from damoc.tokens.compress import CompressConfig, compress_examples

__all__ = ["CompressConfig", "compress_examples"]
