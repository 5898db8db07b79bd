"""Turn a model spec (bundled name, local folder or hub id) into a model and tokenizer.

Safe by default: weights load from safetensors only (pickle files can run code) unless the
caller allows pickle, and a repository's own Python code never runs unless asked.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from damoc.errors import DamocError
from damoc.hardware import default_device, resolve_dtype
from damoc.models.bundled import BUNDLED_PREFIX, prepare_bundled
from damoc.runinfo import weight_files

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class LoadOptions:
    allow_pickle: bool = False
    trust_remote_code: bool = False
    dtype: str = "auto"
    device: str | None = None
    quantization: str = "none"  # "4bit": NF4 weights via bitsandbytes, for QLoRA (CUDA only)


def model_fingerprint(spec: str) -> dict:
    """What identifies a model's weights for caching what it computed: its folder and its weight
    files' sizes and modification times (a folder re-pruned in place gets new ones)."""
    source = resolve_spec(spec)
    return {"source": source, "files": weight_files(source)}


def resolve_spec(spec: str) -> str:
    """Return a local folder or a hub id that `from_pretrained` accepts, or explain why not."""
    if spec.startswith(BUNDLED_PREFIX):
        return str(prepare_bundled(spec))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise DamocError(f"{spec}: folder has no config.json; is it a Hugging Face model folder?")
        return str(path)
    if path.exists():
        raise DamocError(f"{spec}: is a file; give the model's folder, a hub id or a bundled: name")
    if _HUB_ID.match(spec):
        return spec
    raise DamocError(
        f"unknown model spec {spec!r}: use bundled:NAME (see `damoc models list`), "
        "a local Hugging Face folder, or a hub id such as Qwen/Qwen2.5-0.5B"
    )


def load_tokenizer(spec: str, options: LoadOptions = LoadOptions()):
    from transformers import AutoTokenizer

    source = resolve_spec(spec)
    try:
        tok = AutoTokenizer.from_pretrained(source, trust_remote_code=options.trust_remote_code)
    except (OSError, ValueError) as e:
        raise DamocError(_load_hint(spec, e)) from e
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(spec: str, options: LoadOptions = LoadOptions()):
    """Load a causal LM for training or scoring on the chosen device and dtype."""
    from transformers import AutoModelForCausalLM

    source = resolve_spec(spec)
    device = torch.device(options.device) if options.device else default_device()
    dtype = resolve_dtype(options.dtype, device)
    extra = {}
    if options.quantization == "4bit":
        extra = _four_bit(device, dtype)
    elif options.quantization != "none":
        raise DamocError(f"unknown quantization {options.quantization!r}; use none or 4bit")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source,
            dtype=dtype,
            use_safetensors=None if options.allow_pickle else True,
            trust_remote_code=options.trust_remote_code,
            **extra,
        )
    except pickle.UnpicklingError:
        # torch.load(weights_only=True) refused a pickle that holds more than tensors: code, most likely.
        raise DamocError(f"cannot load model {spec!r}: its pickle weights hold objects other than tensors "
                         "(possibly code), which damoc never unpickles even with --allow-pickle; convert the "
                         "weights to safetensors from a trusted copy") from None
    except (OSError, ValueError) as e:
        raise DamocError(_load_hint(spec, e)) from e
    return model if extra else model.to(device)  # a quantized model is placed while it loads


def _four_bit(device: torch.device, dtype: torch.dtype) -> dict:
    """QLoRA's base: NF4 weights with double quantization, computing in the run's dtype."""
    import importlib.util

    if device.type != "cuda":
        raise DamocError(f"quantization 4bit (QLoRA) needs a CUDA GPU; this run is on {device.type}")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise DamocError("quantization 4bit needs bitsandbytes: pip install 'damoc[gpu]'")
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=dtype)
    return {"quantization_config": config, "device_map": {"": device.index or 0}}


def _is_hub_id(spec: str) -> bool:
    """Whether a spec was taken as a hub id: not bundled, not a local path."""
    return not spec.startswith(BUNDLED_PREFIX) and not Path(spec).expanduser().exists() and bool(_HUB_ID.match(spec))


def _load_hint(spec: str, error: Exception) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    hint = ""
    if "trust_remote_code" in str(error) or "custom code" in str(error):
        hint = (" (this model ships its own Python code, which damoc does not run by default; pass "
                "--trust-remote-code only if you trust its repository)")
    elif "safetensors" in str(error).lower() or ".bin" in str(error):
        hint = " (only safetensors weights load by default; pass --allow-pickle if you trust the files)"
    elif _is_hub_id(spec) and (os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in str(error).lower()):
        hint = " (the Hugging Face hub is not reachable offline; use a local folder or a bundled: model)"
    return f"cannot load model {spec!r}: {first}{hint}"
