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
        out = {"name": self.name, "format": self.format, "train": len(self.train),
               "test": len(self.test), "metric": self.primary_metric,
               "description": self.description, "source": self.source, "licence": self.licence}
        if self.is_choice:
            out["train_labels"] = label_counts(self.train, self.format)
            out["test_labels"] = label_counts(self.test, self.format)
        return out


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


# Bumped whenever the split of a data set into train and test changes; part of every cache key
# (candidates, data stage, recovery references), so no result made on another split is reused.
# 1: test ids by a seeded shuffle, returned in file order. 2: stratified by answer, seeded order.
SPLIT_VERSION = 2


def split(examples: list[Example], test_size: int | float, seed: int = 0
          ) -> tuple[list[Example], list[Example]]:
    """A fixed seeded split. For choice tasks the test part is stratified by answer, and ordered so
    that every prefix (what `--test-limit N` takes) keeps the answer shares too: a file sorted by
    label must not give a one-class test set. The train part keeps the file's order."""
    if not examples:
        raise DamocError("the data set is empty")
    n = len(examples)
    n_test = int(round(test_size * n)) if isinstance(test_size, float) else int(test_size)
    if not 0 < n_test < n:
        raise DamocError(f"cannot split {n} examples into a test part of {test_size}; "
                         "give a test fraction in (0, 1) that leaves both parts non-empty")
    rng = random.Random(seed)
    groups: dict[object, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(e.label if e.options else None, []).append(i)
    for ids in groups.values():
        rng.shuffle(ids)
    # Each group's share of the test part, by largest remainder so the shares add up to n_test.
    exact = {k: n_test * len(ids) / n for k, ids in groups.items()}
    take = {k: int(v) for k, v in exact.items()}
    for k in sorted(groups, key=lambda k: (take[k] - exact[k], str(k)))[: n_test - sum(take.values())]:
        take[k] += 1
    # Interleave: the j-th of a group's m test examples sits near position (j + u) / m of the order.
    keyed = [((j + rng.random()) / take[k], i) for k, ids in groups.items() for j, i in enumerate(ids[: take[k]])]
    test_order = [i for _, i in sorted(keyed)]
    test_ids = set(test_order)
    train = [e for i, e in enumerate(examples) if i not in test_ids]
    return train, [examples[i] for i in test_order]


def answer_class(example: Example, format: str) -> str:
    """The class an answer belongs to: the label for classification, the option letter for
    multiple choice (whose option texts differ from question to question)."""
    return example.answer if format == "classification" else LETTERS[example.label or 0]


def label_counts(examples: list[Example], format: str) -> dict[str, int]:
    """How often each answer class occurs (choice tasks; empty otherwise), most common first."""
    from collections import Counter

    if format not in CHOICE_FORMATS:
        return {}
    return dict(Counter(answer_class(e, format) for e in examples).most_common())


def label_warnings(train: list[Example], test: list[Example], format: str) -> list[str]:
    """One line per problem that makes a choice task's accuracy mean little."""
    train_counts, test_counts = label_counts(train, format), label_counts(test, format)
    if not test_counts:
        return []
    out = []
    if len(test_counts) == 1:
        out.append(f"the test set holds one answer only ({next(iter(test_counts))!r} x {len(test)}): its accuracy "
                   "measures one class")
    missing = sorted(c for c in test_counts if c not in train_counts)
    if missing and train_counts:
        out.append(f"answers asked in the test set but never seen in training: {missing}")
    return out
