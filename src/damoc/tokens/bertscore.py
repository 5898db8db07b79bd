"""BERTScore F1 of a compressed text against its original, rescaled by a measured baseline.

BERTScore (Zhang et al., 2020) matches every token embedding of one text to its most similar
token embedding in the other: precision averages over the candidate's tokens, recall over the
reference's, F1 is their harmonic mean. No idf weighting. Texts longer than the encoder's
limit (512 for MiniLM) are scored on their first 512 tokens.

Raw F1 of a small encoder is high even for unrelated texts (MiniLM gives about 0.3-0.5 to two
unrelated abstracts of the same domain), so a raw threshold means little. The scorer measures
a baseline b: the mean raw F1 between pairs of *different* references from the same data
(a fixed seeded pairing), and reports (F1 - b) / (1 - b). A rescaled score of 0.9 therefore
means: the compressed text sits 90% of the way from "an unrelated text of this data set"
(0) to "the original itself" (1).
"""

from __future__ import annotations

import random

import numpy as np
import torch

from damoc.filtering.embeddings import BUNDLED_EMBEDDER, embedder_path


class BertScorer:
    def __init__(self, model: str = BUNDLED_EMBEDDER, layer: int | None = None, batch_size: int = 32,
                 max_length: int = 512):
        from transformers import AutoModel, AutoTokenizer

        from damoc.hardware import default_device

        path = embedder_path(model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, use_safetensors=True).to(default_device()).eval()
        self.layer = layer  # None: the last layer (for MiniLM-L6 the same as bert-score's num_layers=6)
        self.batch_size = batch_size
        self.max_length = min(max_length, getattr(self.model.config, "max_position_embeddings", max_length))
        self.model_name = model
        self._cache: dict[str, torch.Tensor] = {}  # references are scored many times: embed them once
        self.tokens = 0  # tokens run through the encoder, for FLOP accounting

    def _embed(self, texts: list[str], cache: bool = False) -> list[torch.Tensor]:
        if not cache:
            return self._embed_now(texts)
        missing = sorted({t for t in texts if t not in self._cache})
        self._cache.update(zip(missing, self._embed_now(missing)))
        return [self._cache[t] for t in texts]

    @torch.inference_mode()
    def _embed_now(self, texts: list[str]) -> list[torch.Tensor]:
        """Unit-normalised contextual embeddings of each text's non-special tokens. Batches are
        made of texts of similar length (by characters), so little of a batch is padding."""
        out: list[torch.Tensor | None] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        device = next(self.model.parameters()).device
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt",
                                 return_special_tokens_mask=True)
            special = enc.pop("special_tokens_mask").bool()
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            res = self.model(**enc, output_hidden_states=self.layer is not None)
            hidden = res.hidden_states[self.layer] if self.layer is not None else res.last_hidden_state
            hidden = torch.nn.functional.normalize(hidden.float(), dim=-1).cpu()
            self.tokens += int(enc["attention_mask"].sum())
            keep = enc["attention_mask"].cpu().bool() & ~special
            for row, i in enumerate(idx):
                out[i] = hidden[row][keep[row]]
        return out  # type: ignore[return-value]

    def raw_f1(self, candidates: list[str], references: list[str], cache_references: bool = True) -> np.ndarray:
        """BERTScore F1 of each candidate against its reference. References are kept embedded
        (compression scores the same originals every round); `cache_references=False` embeds them
        again, which only a benchmark timing the cache wants."""
        if len(candidates) != len(references):
            raise ValueError("candidates and references differ in length")
        return self._f1(self._embed(candidates), self._embed(references, cache=cache_references))

    def clear_cache(self) -> None:
        """Forget the embedded references (a run starting cold)."""
        self._cache.clear()

    @staticmethod
    def _f1(cand: list[torch.Tensor], ref: list[torch.Tensor]) -> np.ndarray:
        scores = np.zeros(len(cand))
        for i, (c, r) in enumerate(zip(cand, ref)):
            if len(c) == 0 or len(r) == 0:
                continue  # an empty text matches nothing
            sim = c @ r.T
            p, rec = sim.max(dim=1).values.mean().item(), sim.max(dim=0).values.mean().item()
            scores[i] = 2 * p * rec / (p + rec) if p + rec > 0 else 0.0
        return scores

    def baseline(self, references: list[str], pairs: int = 200, seed: int = 0) -> float:
        """Mean raw F1 between different references: what an unrelated text scores here."""
        distinct = sorted(set(references))
        if len(distinct) < 2:
            return 0.0
        rng = random.Random(seed)
        chosen = sorted(rng.sample(distinct, min(len(distinct), pairs)))
        emb = self._embed(chosen, cache=True)
        ij = [rng.sample(range(len(chosen)), 2) for _ in range(pairs)]
        return float(self._f1([emb[i] for i, _ in ij], [emb[j] for _, j in ij]).mean())

    @staticmethod
    def rescale(raw: np.ndarray, baseline: float) -> np.ndarray:
        return (raw - baseline) / (1.0 - baseline)
