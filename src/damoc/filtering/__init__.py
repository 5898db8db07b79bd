"""Data filtering: keep a representative (or high-quality) share of the training examples."""

from damoc.filtering.base import Selector, resolve_budget
from damoc.filtering.run import filter_examples
from damoc.filtering.selectors import SELECTORS, get_selector, register

__all__ = ["SELECTORS", "Selector", "filter_examples", "get_selector", "register", "resolve_budget"]
