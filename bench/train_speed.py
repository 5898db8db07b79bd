"""Benchmark: training speed with the output head on every position (before) and on the loss
positions only (after, `damoc.finetune.train.answer_loss`), both bundled models, LoRA and full.

Same examples, batch, seed and process for both variants, run back to back (after a warm-up
step), so the two seconds compare; the load average and torch threads are recorded. Writes
bench/results/train-speed.json (rows {model, method, tokens_per_second_before, _after, ...}).

    .venv/bin/python bench/train_speed.py [--task boolq] [--examples 24] [--max-seq-len 128]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from _common import BUNDLED, RESULTS, envelope, write_json_atomic

import damoc.finetune.train as train
from damoc.finetune import FinetuneConfig, finetune
from damoc.models import load_model, load_tokenizer
from damoc.tasks import load_task

ANSWER_ONLY = train.answer_loss


def full_head_loss(model, input_ids, attention_mask, labels, num_items=None):
    """What training did before: the model's own loss, its head over every position."""
    return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                 num_items_in_batch=num_items).loss


def timed(spec: str, tokenizer, examples, config: FinetuneConfig, loss) -> dict:
    train.answer_loss = loss
    try:
        model = load_model(spec)
        _, stats = finetune(model, tokenizer, examples, config, progress=False)
    finally:
        train.answer_loss = ANSWER_ONLY
    return {"tokens_per_second": stats.tokens_per_second, "train_seconds": stats.train_seconds,
            "train_flops": stats.train_flops, "steps": stats.steps, "last_loss": stats.last_loss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="boolq")
    ap.add_argument("--examples", type=int, default=24)
    ap.add_argument("--max-seq-len", type=int, default=128)
    ap.add_argument("--out", type=Path, default=RESULTS / "train-speed.json")
    args = ap.parse_args()
    task = load_task(args.task)
    examples = task.train[: args.examples]
    rows = []
    for spec in BUNDLED:
        tokenizer = load_tokenizer(spec)
        for method in ("lora", "full"):
            config = FinetuneConfig(method=method, max_seq_len=args.max_seq_len, batch_size=4, micro_batch_size=4)
            timed(spec, tokenizer, examples[:4], config, ANSWER_ONLY)  # warm-up: first-call costs
            before = timed(spec, tokenizer, examples, config, full_head_loss)
            after = timed(spec, tokenizer, examples, config, ANSWER_ONLY)
            row = {"model": spec, "method": method,
                   "tokens_per_second_before": before["tokens_per_second"],
                   "tokens_per_second_after": after["tokens_per_second"],
                   "speedup": after["tokens_per_second"] / before["tokens_per_second"],
                   "before": before, "after": after,
                   "torch_threads": torch.get_num_threads(), "load_average_at_end": os.getloadavg()[0]}
            rows.append(row)
            print(f"{spec} {method}: {row['tokens_per_second_before']:.0f} -> "
                  f"{row['tokens_per_second_after']:.0f} tokens/s ({row['speedup']:.2f}x)", flush=True)
            write_json_atomic(args.out, {
                **envelope(what="training tokens/s with the head on every position (before) vs on loss positions "
                                "only (after); same examples, batch 4, one epoch, seed 0, back to back in one process",
                           task=args.task, examples=args.examples, max_seq_len=args.max_seq_len, rows=rows),
                "command": f"python bench/train_speed.py --task {args.task} --examples {args.examples} "
                           f"--max-seq-len {args.max_seq_len}",
                "finished": time.strftime("%Y-%m-%d %H:%M:%S")})


if __name__ == "__main__":
    main()
