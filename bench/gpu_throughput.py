"""Benchmark: the training FLOP/s damoc's own fine-tuning reaches on a GPU for 7-9B candidates, so
that the cost model (bench/cost_model.py, `damoc estimate --throughput`) can print hours.

The GPU machine reaches no hub, so each candidate is built from its packaged config
(damoc/selection/architectures.yaml) with random bf16 weights: a step costs the same FLOPs and
memory traffic as with the real weights. Examples are synthetic, tokenized by a small byte-level
tokenizer trained here on their own text, at `--max-seq-len` tokens. Three runs per model: a warm-up (discarded),
a short and a long run, whose difference is the steady-state FLOP/s (start-up cancels out); the
long run's own ratio is what a run of that length reaches, start included.

    python bench/gpu_throughput.py --out bench/results/gpu-throughput.json        # on the GPU
    python bench/gpu_throughput.py --tiny --out /tmp/t.json                       # a CPU smoke run
    python bench/gpu_throughput.py --variants plain fused-adamw compile --out ... # each lever timed alone
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _common import envelope, write_json_atomic

MODELS = ["meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-7B"]
# each timed alone (issue 28): the fused AdamW kernel, and torch.compile on the decoder (finetune/train.py);
# the examples fill max_seq_len, so packing would remove no padding here
VARIANTS = {"plain": {}, "fused-adamw": {"optim": "adamw_torch_fused"}, "compile": {"torch_compile": True}}


def examples(n: int, words: int) -> list:
    from damoc.tasks.base import render

    text = ("the patient was seen in clinic with a fever and a cough that had lasted for three days and "
            "the doctor ordered a chest film ").split()
    return [render("generation", id=str(i), question=f"case {i}: what was found?",
                   context=" ".join(text[(i + k) % len(text)] for k in range(words)),
                   answer="a fever and a cough, treated at home") for i in range(n)]


def byte_tokenizer(texts: list[str]):
    """A byte-level BPE tokenizer of 300 entries trained on `texts` (the machine reaches no hub)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def build(spec: str, tiny: bool):
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig

    from damoc.selection.shapes import catalog

    fields = {k: v for k, v in catalog()[spec.lower()].items() if k != "name"} if not tiny else {}
    config = (LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2) if tiny
              else AutoConfig.for_model(fields.pop("model_type"), **fields))  # the packaged catalog's config
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    with device:
        return AutoModelForCausalLM.from_config(config, dtype=dtype)


def main() -> None:
    from damoc.finetune import FinetuneConfig, finetune

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--max-seq-len", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--steps", type=int, nargs=3, default=[2, 8, 32],
                    help="a warm-up run (discarded: the first CUDA kernels), the short and the long run")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=["plain"])
    args = ap.parse_args()
    tok = byte_tokenizer([e.prompt + " " + e.answer for e in examples(64, words=64)])
    rows = []
    for spec, variant in ((m, v) for m in args.models for v in args.variants):
        runs = []
        for steps in args.steps:
            model = build(spec, args.tiny)
            config = FinetuneConfig(method="lora", max_seq_len=args.max_seq_len, batch_size=args.batch,
                                    micro_batch_size=args.micro_batch, min_steps=0, warmup_ratio=0.0,
                                    **VARIANTS[variant])
            data = examples(steps * args.batch, words=args.max_seq_len)  # contexts cut to fill max_seq_len
            start = time.perf_counter()
            _, stats = finetune(model, tok, data, config, progress=False)
            runs.append({"steps": stats.steps, "tokens": stats.train_tokens, "flops": stats.train_flops,
                         "seconds": stats.train_seconds, "wall": time.perf_counter() - start})
            peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
            del model
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
        _, short, long = runs
        rows.append({"model": spec if not args.tiny else "tiny-llama", "method": "lora", "variant": variant,
                     "runs": runs[1:],
                     "flops_per_second": (long["flops"] - short["flops"]) / (long["seconds"] - short["seconds"]),
                     "flops_per_second_long_run": long["flops"] / long["seconds"],
                     "tokens_per_second": (long["tokens"] - short["tokens"]) / (long["seconds"] - short["seconds"]),
                     "peak_memory_gib": peak, "max_seq_len": args.max_seq_len, "batch_size": args.batch,
                     "micro_batch_size": args.micro_batch})
        print(rows[-1], flush=True)
        write_json_atomic(args.out, {
            **envelope(rows=rows, device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"),
            "weights": "random (built from the packaged config): same FLOPs as the real ones",
            "command": "python bench/gpu_throughput.py --out OUT.json"})


if __name__ == "__main__":
    main()
