"""`--targets self`: the chosen prompts answered by the original (unpruned) model, so that the pruned
model recovers towards what it was before pruning rather than towards the pool's answers
(self-data distillation, arXiv 2410.09982).

Each prompt is the one training would see with the pool's answer (the context cut alike), answered
greedily with `damoc.evaluation.scoring.generate` up to `max_new_tokens`. The raw generation is cached
per prompt in $DAMOC_HOME/self-targets, keyed by the original model's fingerprint, the prompt's token
ids and the cap, so another method or seed that picks the same prompt does not generate it again.

The answer is the generation up to the first line where the model starts a new turn of damoc's
templates (`### Instruction:` ..., `Context:`, `Question:`, `Answer:`; `damoc.tasks.base.render`):
the instruction formats carry no stop token of their own, and a base model goes on with the next
question. An answer empty after that is dropped, and counted; so is one that no longer fits
training's `max_seq_len` (question and answer alone too long).

The cost is the generation's forward FLOPs (`damoc.flops.forward_flops`, 2 N per token) on the
tokens it processes: each prompt once and each generated token once (with the KV cache), the
generated tokens counted by re-encoding the decoded text (the padding a batch also runs is not
counted). It is kept with each cached entry and counted whether or not the entry was cached, as
the JSD's FLOPs are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from damoc.errors import DamocError
from damoc.tasks.base import Example

CACHE_KIND = "self-targets"
TURN_MARKERS = ("###", "Context:", "Question:", "Answer:")


def own_answer(generated: str) -> str:
    """The generation up to the first line that opens a new turn of the template, stripped."""
    kept = []
    for line in generated.split("\n"):
        if line.lstrip().startswith(TURN_MARKERS):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def _valid_entry(entry: object) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("text"), str)
            and isinstance(entry.get("tokens"), int) and isinstance(entry.get("flops"), (int, float)))


def generate_answers(original: str, prompts: Sequence[Sequence[int]], max_new_tokens: int, batch_size: int = 4,
                     progress: bool = False) -> tuple[list[dict], int]:
    """Each prompt's greedy generation by `original` ({text, tokens, flops}), from the cache where it
    is there; and how many were."""
    from damoc.io import read_json_checked, write_cache, write_json_atomic
    from damoc.models import home_cache_path, model_fingerprint

    fingerprint = model_fingerprint(original)
    paths = [home_cache_path(CACHE_KIND, {"original": fingerprint, "prompt": list(ids),
                                          "max_new_tokens": max_new_tokens}) for ids in prompts]
    entries = [read_json_checked(p, _valid_entry) for p in paths]
    todo = [i for i, e in enumerate(entries) if e is None]
    if todo:
        from damoc.evaluation.scoring import generate
        from damoc.flops import forward_flops
        from damoc.models import load_model, load_tokenizer

        tok, model = load_tokenizer(original), load_model(original).eval()
        texts = generate(model, tok, [prompts[i] for i in todo], max_new_tokens, batch_size,
                         desc="answers of the original model" if progress else None)
        for i, text in zip(todo, texts):
            n = min(max_new_tokens, len(tok(text, add_special_tokens=False)["input_ids"])) if text else 0
            entry = {"text": text, "tokens": n, "flops": forward_flops(model, len(prompts[i]) + n)}
            write_cache(paths[i], lambda p=paths[i], e=entry: write_json_atomic(p, e))
            entries[i] = entry
    return entries, len(prompts) - len(todo)


def self_targets(subset: Sequence[Example], original: str, pruned: str, prompt_len: int, train_len: int,
                 max_new_tokens: int, batch_size: int = 4, progress: bool = False) -> tuple[list[int], list[Example],
                                                                                             dict]:
    """(positions in `subset` kept, the kept samples with the original model's answers, a summary).
    `prompt_len`: the token limit the prompt is cut to as with the pool's answer (the pool's
    --max-len); `train_len`: training's max_seq_len, which answer and question must fit."""
    from damoc.encoding import encode
    from damoc.models import load_tokenizer
    from damoc.tasks.base import continuation

    if not subset:
        raise DamocError("no samples to generate answers for")
    tok = load_tokenizer(original)
    prompts = []
    for e in subset:
        enc = encode(tok, e, continuation(e), prompt_len)
        prompts.append(enc.input_ids[:enc.n_prompt])
    entries, cached = generate_answers(original, prompts, max_new_tokens, batch_size, progress)
    train_tok = load_tokenizer(pruned)
    kept, examples, empty, too_long, trained_tokens = [], [], 0, 0, 0
    for pos, (e, entry) in enumerate(zip(subset, entries)):
        answer = own_answer(entry["text"])
        if not answer:
            empty += 1
            continue
        new = dataclasses.replace(e, answer=answer)
        try:
            enc = encode(train_tok, new, continuation(new), train_len, add_eos=True)
        except DamocError:
            too_long += 1
            continue
        kept.append(pos)
        examples.append(new)
        # the answer's tokens as training sees them, without the EOS it adds
        trained_tokens += len(enc.input_ids) - enc.n_prompt - (train_tok.eos_token_id is not None)
    if not examples:
        raise DamocError(f"the original model's answers to all {len(subset)} chosen prompts are empty or too long; "
                         "use --targets data")
    summary = {"max_new_tokens": max_new_tokens, "generated": len(subset), "cached": cached,
               "empty_dropped": empty, "too_long_dropped": too_long, "kept": len(examples),
               "reached_cap": sum(entry["tokens"] >= max_new_tokens for entry in entries),
               "answer_tokens": trained_tokens,
               "generation_tokens": sum(len(p) + entry["tokens"] for p, entry in zip(prompts, entries)),
               "generation_flops": float(sum(entry["flops"] for entry in entries))}
    return kept, examples, summary
