"""Shared fixtures: tiny random models and a tokenizer trained in the test, real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CORPUS = [
    "Context: the patient has a fever and a cough. Question: is it a cold? Answer: yes",
    "Context: aspirin reduces pain. Question: does aspirin help? Answer: no maybe yes",
    "The quick brown fox jumps over the lazy dog. Instruction: summarise the input. Response:",
    "Financial question: should I save or invest? Answer: diversify and keep costs low.",
]


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 5, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


def build_model(arch: str, vocab_size: int, layers: int = 2, seed: int = 0):
    import torch
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig

    torch.manual_seed(seed)
    common = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                  num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=512, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    if arch == "llama":
        config = LlamaConfig(**common)
    elif arch == "gemma3":
        config = Gemma3TextConfig(**common, head_dim=8, sliding_window=16)
    else:
        raise ValueError(arch)
    return AutoModelForCausalLM.from_config(config)


def save_tiny(tmp: Path, arch: str = "llama", seed: int = 0, layers: int = 2) -> Path:
    tok = build_tokenizer()
    model = build_model(arch, len(tok), layers=layers, seed=seed)
    folder = tmp / f"tiny-{arch}-{seed}-{layers}"
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("models"), "llama")


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("models"), "gemma3")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[str]:
    """Two tiny llamas of different weights, built once per test module (a module's caches and
    failure probes stay its own): the candidates of the small selection runs."""
    root = tmp_path_factory.mktemp("two-llamas")
    return [str(save_tiny(root, "llama", seed=1)), str(save_tiny(root, "llama", seed=3))]


def small_config(models: list[str], cls_file: Path, **update):
    """A selection small enough for a test: LoRA on each model, a random half of `cls_file` (the
    `cls_file` fixture's columns), 4 test questions, no compression, no pruning."""
    from damoc.finetune import FinetuneConfig
    from damoc.selection.candidate import Candidate
    from damoc.selection.config import FilterSettings, SelectConfig
    from damoc.tasks import DataSpec

    base = dict(
        data=DataSpec(path=cls_file, format="classification", fields={"context": "passage", "label": "y"}),
        candidates=[Candidate(model=m, method="lora") for m in models],
        finetune=FinetuneConfig(max_seq_len=96, batch_size=4, micro_batch_size=4),
        test_limit=4, eval_batch_size=4, filter=FilterSettings(method="random", rate=0.5),
        compress=None, prune=None,
    )
    return SelectConfig(**(base | update))


@pytest.fixture
def cls_file(tmp_path) -> Path:
    """A small real classification JSONL file."""
    rows = []
    for i in range(30):
        label = ["yes", "no", "maybe"][i % 3]
        rows.append({"question": f"is case {i} positive?", "passage": f"case {i} shows sign {label} " * 3,
                     "y": label})
    path = tmp_path / "cls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def gen_file(tmp_path) -> Path:
    rows = [{"question": f"what is {i} plus {i}?", "answer": f"it is {2 * i}"} for i in range(20)]
    path = tmp_path / "gen.json"
    path.write_text(json.dumps(rows))
    return path


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def training_examples(n: int = 8) -> list:
    """n tiny two-class examples, alternating labels: enough for a few optimizer steps."""
    from damoc.tasks.base import render

    return [render("classification", id=str(i), question=f"is case {i} positive?",
                   context="patient has a fever", options=["yes", "no"], label=i % 2) for i in range(n)]
