"""Ask an instruct LLM to turn word-dropped text back into fluent, short text.

The first try is greedy; later tries sample (temperature 0.7, seeded) from the same prompt,
so a retry is a different rewrite rather than the same one again. Output length is capped so
a rewrite cannot simply restore the original length, and 4-grams may not repeat (small models
otherwise loop).
"""

from __future__ import annotations

import torch

PROMPT = ("Some words were removed from the text below. Rewrite it as fluent, complete sentences. "
          "Keep every fact, number and name; add nothing new; stay as short as the text.\n\nText: {text}")


class Rewriter:
    def __init__(self, model, tokenizer, batch_size: int = 4):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.tokens = 0  # prompt + generated tokens, for FLOP accounting

    def prompt_ids(self, text: str) -> list[int]:
        message = PROMPT.format(text=text)
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template([{"role": "user", "content": message}], add_generation_prompt=True,
                                          tokenize=True)
            return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
        return tok(message + "\nRewritten:")["input_ids"]

    @torch.inference_mode()
    def rewrite(self, texts: list[str], max_new_tokens: list[int], attempt: int = 0, seed: int = 0,
                desc: str | None = None) -> list[str]:
        from tqdm.auto import tqdm

        from damoc.evaluation.scoring import left_pad

        tok = self.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        device = next(self.model.parameters()).device
        out = [""] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: -max_new_tokens[i])
        bar = tqdm(total=len(texts), desc=desc, disable=desc is None, leave=False)
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            ids, mask, _ = left_pad([self.prompt_ids(texts[i]) for i in idx], pad_id, device)
            sample = attempt > 0
            if sample:
                torch.manual_seed(seed * 1000 + attempt * 100 + b)
            gen = self.model.generate(input_ids=ids, attention_mask=mask, pad_token_id=pad_id,
                                      max_new_tokens=max(max_new_tokens[i] for i in idx),
                                      do_sample=sample, temperature=0.7 if sample else None,
                                      top_p=0.9 if sample else None, top_k=None,
                                      no_repeat_ngram_size=4,
                                      eos_token_id=tok.eos_token_id)
            self.tokens += int(mask.sum()) + int((gen[:, ids.shape[1]:] != pad_id).sum())
            for row, i in enumerate(idx):
                new = gen[row, ids.shape[1]:ids.shape[1] + max_new_tokens[i]]
                out[i] = " ".join(tok.decode(new, skip_special_tokens=True).split())
            bar.update(len(idx))
        bar.close()
        return out
