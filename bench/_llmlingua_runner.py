"""LLMLingua for bench/compress_pubmedqa.py, in its own environment: `run_llmlingua` (the caller's
side) writes a job and runs this file with that environment's python; `main` (the runner's side)
runs LLMLingua's PromptCompressor on the job's texts.

LLMLingua 0.2.2 needs transformers <= 4.35 (it expects tuple KV caches) and downloads a
tiktoken file at start-up. This runner (benchmark only) gives it a model folder written for
transformers 4.35 and replaces the tiktoken look-up with the scoring model's own tokenizer,
so its rate is counted in the same tokens as damoc's.
Usage: python _llmlingua_runner.py IN.json OUT.json  (IN: {"model": dir, "rate": r, "texts": [...]})
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def compat_folder(src: Path, dst: Path) -> Path:
    """The model folder rewritten for transformers 4.35 / tokenizers 0.15 (benchmark only)."""
    dst.mkdir(parents=True, exist_ok=True)
    config = json.loads((src / "config.json").read_text())
    rope = config.pop("rope_parameters", None) or {}
    config["rope_theta"] = rope.get("rope_theta", config.get("rope_theta", 10000.0))
    config["torch_dtype"] = config.pop("dtype", "float32")
    (dst / "config.json").write_text(json.dumps(config))
    tok_config = json.loads((src / "tokenizer_config.json").read_text())
    tok_config.update(tokenizer_class="PreTrainedTokenizerFast", model_max_length=config["max_position_embeddings"])
    tok_config.pop("backend", None)
    (dst / "tokenizer_config.json").write_text(json.dumps(tok_config))
    tok = json.loads((src / "tokenizer.json").read_text())
    tok["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in tok["model"]["merges"]]
    tok["model"].pop("ignore_merges", None)
    (dst / "tokenizer.json").write_text(json.dumps(tok))
    if not (dst / "model.safetensors").exists():
        os.symlink(src / "model.safetensors", dst / "model.safetensors")
    return dst


def run_llmlingua(python: str, model_dir: Path, texts: list[str], rate: float) -> dict:
    """LLMLingua's output for `texts` at `rate`, run by `python` (its own environment) on `model_dir`."""
    with tempfile.TemporaryDirectory() as tmp:
        job, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        job.write_text(json.dumps({"model": str(compat_folder(model_dir, Path(tmp) / "model")),
                                   "rate": rate, "texts": texts}))
        proc = subprocess.run([python, str(Path(__file__).resolve()), str(job), str(out)],
                              capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
        return json.loads(out.read_text())


def main() -> None:
    job = json.load(open(sys.argv[1]))
    import tiktoken
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(job["model"])

    class SameTokenizer:  # stands in for the gpt-3.5 tiktoken encoding
        def encode(self, text, *a, **k):
            return hf_tok(text, add_special_tokens=False)["input_ids"]

        def decode(self, ids, *a, **k):
            return hf_tok.decode(ids)

    tiktoken.encoding_for_model = lambda name: SameTokenizer()
    from llmlingua import PromptCompressor

    start = time.perf_counter()
    compressor = PromptCompressor(model_name=job["model"], device_map="cpu")
    load = time.perf_counter() - start
    out, start = [], time.perf_counter()
    for text in job["texts"]:
        res = compressor.compress_prompt([text], rate=job["rate"], use_sentence_level_filter=False,
                                         use_context_level_filter=False, use_token_level_filter=True)
        out.append(res["compressed_prompt"])
    seconds = time.perf_counter() - start
    import llmlingua
    import transformers

    json.dump({"texts": out, "seconds": seconds, "load_seconds": load,
               "versions": {"llmlingua": getattr(llmlingua, "__version__", "0.2.2"),
                            "transformers": transformers.__version__}}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
