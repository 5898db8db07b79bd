"""A task is data + prompt template + answer format + metric.

Every example is rendered into three text pieces, prefix + context + suffix, followed by the
answer. The context (a passage, an abstract, an input) is the only piece that may be cut to
fit the maximum sequence length, so the question and the answer options always survive.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from damoc.errors import DamocError

Format = Literal["classification", "multiple_choice", "generation", "instruction"]
CHOICE_FORMATS = ("classification", "multiple_choice")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Example:
    id: str
    prefix: str
    context: str
    suffix: str
    answer: str
    options: tuple[str, ...] = ()
    label: int | None = None

    @property
    def prompt(self) -> str:
        return self.prefix + self.context + self.suffix


@dataclass
class Task:
    name: str
    format: Format
    train: list[Example]
    test: list[Example]
    description: str = ""
    source: str = ""
    licence: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def is_choice(self) -> bool:
        return self.format in CHOICE_FORMATS

    @property
    def primary_metric(self) -> str:
        """Accuracy for choice tasks (higher is better), answer bits per byte otherwise (lower)."""
        return "accuracy" if self.is_choice else "answer_bpb"

    def summary(self) -> dict:
        return {"name": self.name, "format": self.format, "train": len(self.train),
                "test": len(self.test), "metric": self.primary_metric,
                "description": self.description, "source": self.source, "licence": self.licence}


def render(format: Format, *, id: str, question: str = "", context: str = "", answer: str = "",
           options: list[str] | None = None, label: int | None = None,
           instruction: str = "") -> Example:
    """Build an Example with damoc's fixed template for the format."""
    if format == "instruction":
        prefix = f"### Instruction:\n{instruction.strip()}\n\n"
        if context.strip():
            prefix += "### Input:\n"
            suffix = "\n\n### Response:\n"
        else:
            suffix = "### Response:\n"
        return Example(id, prefix, context.strip(), suffix, answer.strip())
    prefix = "Context: " if context.strip() else ""
    suffix = ("\n" if context.strip() else "") + f"Question: {question.strip()}\n"
    if format == "multiple_choice":
        assert options is not None
        suffix += "".join(f"{LETTERS[i]}. {o}\n" for i, o in enumerate(options))
    suffix += "Answer:"
    if format in CHOICE_FORMATS:
        assert options is not None and label is not None
        # Options are scored as continuations after "Answer:", so they carry the space.
        return Example(id, prefix, context.strip(), suffix, options[label],
                       tuple(options), label)
    return Example(id, prefix, context.strip(), suffix, answer.strip())


def continuation(example: Example, option: str | None = None) -> str:
    """The text the model is trained on and scored for: a space, then the answer."""
    text = example.answer if option is None else option
    if example.prefix.startswith("### Instruction"):
        return text
    return " " + text


def split(examples: list[Example], test_size: int | float, seed: int = 0
          ) -> tuple[list[Example], list[Example]]:
    """A fixed seeded split: the same seed always gives the same test examples."""
    if not examples:
        raise DamocError("the data set is empty")
    n = len(examples)
    n_test = int(round(test_size * n)) if isinstance(test_size, float) else int(test_size)
    if not 0 < n_test < n:
        raise DamocError(f"cannot split {n} examples into a test part of {test_size}; "
                         "give a test fraction in (0, 1) that leaves both parts non-empty")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    test_ids = set(order[:n_test])
    train = [e for i, e in enumerate(examples) if i not in test_ids]
    test = [e for i, e in enumerate(examples) if i in test_ids]
    return train, test
