import pytest
import torch

from damoc.errors import DamocError
from damoc.models import LoadOptions, load_model, load_tokenizer, resolve_spec
from damoc.models.bundled import bundled_name
from damoc.models.catalog import list_models


def test_spec_resolution(tmp_path, tiny_llama):
    assert resolve_spec(str(tiny_llama)) == str(tiny_llama)
    assert resolve_spec("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"  # a hub id passes through
    with pytest.raises(DamocError, match="unknown model spec"):
        resolve_spec("definitely not a model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DamocError, match="no config.json"):
        resolve_spec(str(tmp_path / "empty"))
    with pytest.raises(DamocError, match="bundled models are"):
        bundled_name("bundled:gpt-17")


def test_local_folder_loads_in_fp32_on_cpu_and_bf16_on_cuda(tiny_llama):
    on_cpu = load_model(str(tiny_llama), LoadOptions(device="cpu"))
    assert next(on_cpu.parameters()).dtype == torch.float32
    model = load_model(str(tiny_llama))  # the machine's default: CUDA with bf16 where present
    p = next(model.parameters())
    expected = ("cuda", torch.bfloat16) if torch.cuda.is_available() else ("cpu", torch.float32)
    assert (p.device.type, p.dtype) == expected
    assert load_tokenizer(str(tiny_llama)).pad_token_id is not None


def test_pickle_weights_need_explicit_permission(tmp_path, tiny_llama):
    import shutil

    from transformers import AutoModelForCausalLM

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_llama, folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(DamocError, match="allow-pickle"):
        load_model(str(folder))
    loaded = load_model(str(folder), LoadOptions(allow_pickle=True, device="cpu"))
    for (n, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), n


def test_models_list_shows_bundled(monkeypatch, tmp_path):
    monkeypatch.setenv("DAMOC_HOME", str(tmp_path))
    rows = list_models()
    specs = {r["spec"]: r for r in rows}
    assert specs["bundled:smollm2-135m-instruct"]["status"] == "not prepared"
    assert "bundled:gemma3-270m" in specs
