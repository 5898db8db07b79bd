"""Token ids for (prompt, continuation) pairs, shared by training and evaluation.

Pieces are encoded separately and concatenated so the boundary between prompt and answer is
exact, and the context alone is cut (from its end) when the whole would exceed max_len.
Training and scoring use this one function, so they see identical ids.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from damoc.errors import DamocError
from damoc.tasks.base import Example

MIN_CONTEXT_TOKENS = 16


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    n_prompt: int  # ids[:n_prompt] is the prompt; the rest is the continuation
    truncated: bool


def _ids(tokenizer, text: str) -> list[int]:
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def leading_special_ids(tokenizer) -> list[int]:
    """The ids a tokenizer puts before a text on its own (a BOS token for Llama or Gemma)."""
    return list(_leading_special_ids(tokenizer))


@functools.lru_cache(maxsize=8)
def _leading_special_ids(tokenizer) -> tuple[int, ...]:
    # Asked once per tokenizer, not once per encoded example.
    with_special = list(tokenizer("x")["input_ids"])
    plain = _ids(tokenizer, "x")
    for start in range(len(with_special) - len(plain) + 1):
        if with_special[start:start + len(plain)] == plain:
            return tuple(with_special[:start])
    return ()


def encode(tokenizer, example: Example, continuation: str, max_len: int,
           add_eos: bool = False) -> Encoded:
    head = leading_special_ids(tokenizer) + _ids(tokenizer, example.prefix)
    context = _ids(tokenizer, example.context)
    tail = _ids(tokenizer, example.suffix)
    answer = _ids(tokenizer, continuation)
    if add_eos and tokenizer.eos_token_id is not None:
        answer = answer + [tokenizer.eos_token_id]
    if not answer:
        raise DamocError(f"example {example.id}: the answer is empty")
    fixed = len(head) + len(tail) + len(answer)
    budget = max_len - fixed
    truncated = len(context) > budget
    if truncated:
        if budget < min(MIN_CONTEXT_TOKENS, len(context)):
            raise DamocError(
                f"example {example.id}: question and answer alone take {fixed} tokens, more than "
                f"--max-seq-len {max_len} allows; raise --max-seq-len"
            )
        context = context[: max(budget, 0)]
    prompt = head + context + tail
    return Encoded(prompt + answer, len(prompt), truncated)
