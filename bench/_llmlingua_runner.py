"""Run LLMLingua's PromptCompressor on texts; executed by compress_pubmedqa.py in its own venv.

LLMLingua 0.2.2 needs transformers <= 4.35 (it expects tuple KV caches) and downloads a
tiktoken file at start-up. This runner (benchmark only) gives it a model folder written for
transformers 4.35 and replaces the tiktoken look-up with the scoring model's own tokenizer,
so its rate is counted in the same tokens as damoc's.
Usage: python _llmlingua_runner.py IN.json OUT.json  (IN: {"model": dir, "rate": r, "texts": [...]})
"""

import json
import sys
import time


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
