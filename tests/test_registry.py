import pytest
from pydantic import ValidationError

from damoc.errors import DamocError
from damoc.registry import LazyChoices, Registry


def test_unknown_names_list_what_is_available_and_names_register_once():
    r: Registry = Registry("widget")
    r.register("b", colour="blue")(len)
    r.add("a", max)
    assert r.names() == ["a", "b"] and r["b"] is len and r.info("b") == {"colour": "blue"}
    with pytest.raises(DamocError, match="unknown widget 'c'; available: a, b"):
        r.get("c")
    with pytest.raises(ValueError, match="registered twice"):
        r.add("a", min)


def test_configs_refuse_unknown_method_names_under_the_setting_name():
    from damoc.layers import PruneConfig
    from damoc.recovery.run import RecoverConfig
    from damoc.selection.launch import LaunchSettings

    for make, field in [(lambda: PruneConfig(merge="glue"), "merge"),
                        (lambda: LaunchSettings(launcher="slurm"), "launcher"),
                        (lambda: RecoverConfig(original="a", pruned="b", method="magic"), "method")]:
        with pytest.raises(ValidationError, match=f"{field}\n.*unknown .*available"):
            make()


def test_every_metric_says_its_direction():
    from damoc.evaluation.metrics import METRICS, higher_is_better

    assert higher_is_better("accuracy") and not higher_is_better("answer_bpb")
    assert all(isinstance(METRICS.info(n)["higher_is_better"], bool) for n in METRICS)


def test_lazy_choices_read_a_registry_or_a_literal_only_when_asked(monkeypatch):
    from typing import Literal

    import damoc.selection.config as config_module

    merges = LazyChoices("damoc.layers.merge:MERGES")
    assert "sparse" in merges and "glue" not in merges and list(merges) == ["difference", "none", "sparse"]
    assert list(LazyChoices("damoc.finetune.methods:METHODS")) == ["dora", "full", "ia3", "loha", "lora"]
    monkeypatch.setattr(config_module, "KINDS", Literal["a", "b"], raising=False)  # a Literal alias
    assert list(LazyChoices("damoc.selection.config:KINDS")) == ["a", "b"]


def test_a_stored_result_is_read_typed_and_keeps_what_it_does_not_type():
    from damoc.selection.candidate import CandidateResult, is_ok, ranked

    stored = {"model": "m", "method": "lora", "status": "ok", "metrics": {"accuracy": 0.5}, "rank": 1,
              "train_seconds": 3.0, "prune": {"removed": [2]}}
    r = CandidateResult.of(stored)
    assert r.ok and r.name == "m lora" and r.rank == 1 and r.extra("prune") == {"removed": [2]}
    assert r.model_dump(exclude_unset=True) == stored  # written back unchanged
    failed = {"model": "n", "method": "full", "status": "failed", "error": "boom"}
    assert not is_ok(failed) and [x.name for x in ranked({"candidates": [stored, failed]})] == ["m lora"]
