"""Checks a run makes before any work: every candidate's model can be found, and every question
fits in `max_seq_len` for every candidate's tokenizer.

Without them a typo in one spec (`bundled:nosuch`) or one overlong question is found only when
its candidate runs: after the data stage, with a run folder written, ending in "every candidate
failed" (exit 3). Checked first, it is one line and exit 2, and nothing is written.
"""

from __future__ import annotations

import os

from damoc.encoding import encode
from damoc.errors import DamocError
from damoc.models.bundled import BUNDLED_PREFIX
from damoc.tasks.base import Example, continuation


def check_spec(spec: str) -> str:
    """The spec resolved (a bundled model is converted now, into $DAMOC_HOME, never the run folder),
    or a one-line error. A hub id is checked against the local cache when the hub is offline."""
    from damoc.models.loading import resolve_spec

    source = resolve_spec(spec)
    if not spec.startswith(BUNDLED_PREFIX) and not os.path.isdir(source) and _offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(source, "config.json"), str):
            raise DamocError(f"model {spec!r} is not a local folder and is not in the Hugging Face cache, and the "
                             "hub is offline (HF_HUB_OFFLINE=1): use a local folder or a bundled: model")
    return source


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_specs(specs: list[str | None]) -> None:
    for spec in dict.fromkeys(s for s in specs if s):
        check_spec(spec)


def check_lengths(specs: list[str], train: list[Example], test: list[Example], max_len: int, choice: bool,
                  trust_remote_code: bool = False) -> None:
    """Every training example (with its end-of-text token) and every test question (with each option)
    fits in max_len tokens once its context is cut, for each distinct tokenizer. A tokenizer that does
    not load is left to its candidate, which fails alone."""
    from damoc.models.loading import LoadOptions, load_tokenizer

    for spec in dict.fromkeys(specs):
        try:
            tok = load_tokenizer(spec, LoadOptions(trust_remote_code=trust_remote_code))
        except Exception:  # noqa: BLE001 - a broken tokenizer fails its own candidate, with its own message
            continue
        for ex in train:
            encode(tok, ex, continuation(ex), max_len, add_eos=True)
        for ex in test:
            for option in (ex.options if choice else [None]):
                encode(tok, ex, continuation(ex, option), max_len)


def preflight(config) -> None:
    """Both checks for a `select` or `baseline` config (a BaselineConfig), on the examples it will use."""
    from damoc.selection.runner import select_examples
    from damoc.tasks import load_task

    check_specs([s for c in config.candidates for s in (c.model, c.base)])
    task = load_task(config.task, config.data)
    train, test = select_examples(task, config, quiet=True)
    check_lengths([c.model for c in config.candidates], train, test, config.finetune.max_seq_len, task.is_choice,
                  config.trust_remote_code)
