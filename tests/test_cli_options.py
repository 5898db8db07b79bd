"""Settings defined once: flags generated from the configs, flags > run file > defaults."""

from __future__ import annotations

import argparse

import pytest
import yaml

from damoc.cli import build_parser, main
from damoc.cli.options import DEST
from damoc.cli.runs import select_config
from damoc.configs import first_line, shipped


def subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, deeper in subparsers(sub):
                    yield f"{name} {inner}", deeper


def test_every_config_backed_flag_has_no_default_of_its_own():
    seen = 0
    for name, parser in subparsers(build_parser()):
        for action in parser._actions:
            if action.dest.startswith(DEST):
                seen += 1
                assert action.default is argparse.SUPPRESS, f"damoc {name} {action.option_strings}"
    assert seen > 150  # select alone has ~60


def test_flag_names_are_unique_within_each_command():
    for name, parser in subparsers(build_parser()):
        flags = [f for a in parser._actions for f in a.option_strings]
        assert len(flags) == len(set(flags)), name


def parse(argv):
    return build_parser().parse_args(["select", "--out", "x", *argv])


def write(tmp_path, settings: dict):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def test_flags_beside_a_run_file_win_and_the_rest_comes_from_it(tmp_path):
    run = write(tmp_path, {"task": "boolq", "candidates": [{"model": "m", "method": "full"}], "train_limit": 50,
                           "seed": 4, "finetune": {"max_seq_len": 64, "epochs": 2},
                           "prune": {"threshold": 0.5}, "launch": {"launcher": "local"}})
    config, launch = select_config(parse(["--config", run, "--max-seq-len", "32", "--train-limit", "7",
                                          "--prune.max-fraction", "0.5", "--models", "a", "b"]))
    assert config.finetune.max_seq_len == 32 and config.finetune.epochs == 2  # flag wins; the rest kept
    assert config.train_limit == 7 and config.seed == 4
    assert config.prune.threshold == 0.5 and config.prune.max_fraction == 0.5
    assert [(c.model, c.method) for c in config.candidates] == [("a", "lora"), ("b", "lora")]
    assert launch.launcher == "local"
    # Without flags, the run file alone; without either, the config's own defaults.
    config, _ = select_config(parse(["--config", run]))
    assert config.finetune.max_seq_len == 64 and config.train_limit == 50
    config, _ = select_config(parse(["--task", "boolq", "--models", "m"]))
    assert config.finetune.max_seq_len == 512 and config.prune.threshold == 0.85


def test_a_field_flag_adds_to_the_run_files_fields(tmp_path):
    """--field names one column; the run file's other mappings stay (they were dropped before)."""
    run = write(tmp_path, {"data": {"path": str(tmp_path / "d.jsonl"), "format": "classification",
                                    "fields": {"label": "y", "context": "passage"}},
                           "candidates": [{"model": "m", "method": "full"}]})
    config, _ = select_config(parse(["--config", run, "--field", "question=q", "--field", "label=verdict"]))
    assert config.data.fields == {"label": "verdict", "context": "passage", "question": "q"}
    # a selector's options replace the run file's: another method's options would not fit it
    run = write(tmp_path, {"task": "boolq", "candidates": [{"model": "m", "method": "full"}],
                           "filter": {"method": "graphcut", "options": {"lam": 0.3}}})
    config, _ = select_config(parse(["--config", run, "--filter.method", "random", "--filter.options", "draw=1"]))
    assert config.filter.method == "random" and config.filter.options == {"draw": 1}
    # without options of its own, the run file's would reach the other selector: refused in one line, up front
    with pytest.raises(Exception, match="random has no option lam"):
        select_config(parse(["--config", run, "--filter.method", "random"]))


@pytest.mark.parametrize("source", ["flag", "run file"])
def test_lora_alpha_is_twice_the_rank_whichever_way_the_rank_is_given(tmp_path, source):
    argv = ["--task", "boolq", "--models", "m"]
    if source == "flag":
        config, _ = select_config(parse([*argv, "--lora-r", "8"]))
    else:
        config, _ = select_config(parse([*argv, "--config", write(tmp_path, {"finetune": {"lora_r": 8}})]))
    assert (config.finetune.lora_r, config.finetune.lora_alpha) == (8, 16)
    config, _ = select_config(parse([*argv, "--lora-r", "8", "--lora-alpha", "4"]))
    assert config.finetune.lora_alpha == 4  # given explicitly, it stays


@pytest.mark.parametrize("source", ["flag", "run file"])
def test_one_seed_reaches_training_compression_and_pruning(tmp_path, source):
    argv = ["--task", "boolq", "--models", "m"]
    config, _ = select_config(parse([*argv, "--seed", "3"]) if source == "flag"
                              else parse([*argv, "--config", write(tmp_path, {"seed": 3})]))
    assert (config.seed, config.finetune.seed, config.compress.seed, config.prune.seed) == (3, 3, 3, 3)
    config, _ = select_config(parse([*argv, "--seed", "3", "--prune.seed", "9"]))
    assert config.prune.seed == 9 and config.finetune.seed == 3


def test_sections_turn_off_and_a_budget_replaces_the_default_rate():
    config, _ = select_config(parse(["--task", "boolq", "--models", "m", "--no-prune", "--no-compress",
                                     "--filter.budget", "40"]))
    assert config.prune is None and config.compress is None
    assert (config.filter.rate, config.filter.budget) == (None, 40)


def test_graphcuts_pool_is_written_into_the_config_and_keys_the_cache(tmp_path, capsys):
    """GraphCut's pool (its default where not given) is stored with the run, so a run cached while GraphCut
    read all the data (pool_factor none) is never reused for a pooled one; other selectors get no pool."""
    from damoc.filtering.selectors import GRAPHCUT_POOL_FACTOR
    from damoc.selection.candidate import Candidate, candidate_key

    argv = ["--task", "boolq", "--models", "m"]
    assert select_config(parse(argv))[0].filter.options == {"pool_factor": GRAPHCUT_POOL_FACTOR}
    pooled, _ = select_config(parse([*argv, "--filter.options", "pool_factor=2"]))
    whole, _ = select_config(parse([*argv, "--filter.options", "pool_factor=none"]))
    assert pooled.filter.options == {"pool_factor": 2}
    assert whole.filter.options == {"pool_factor": None}
    assert select_config(parse([*argv, "--filter.method", "random"]))[0].filter.options == {}
    c = Candidate(model="m", method="lora")
    two = select_config(parse([*argv, "--filter.options", "pool_factor=2.0"]))[0]
    assert candidate_key(two, c) == candidate_key(pooled, c)  # 2.0 is 2
    assert select_config(parse([*argv, "--filter.options", "lam=0.3"]))[0].filter.options == \
        {"lam": 0.3, "pool_factor": GRAPHCUT_POOL_FACTOR}
    assert select_config(parse([*argv, "--filter.options", "pool_factor=3.0"]))[0].filter.options == {"pool_factor": 3}
    assert candidate_key(pooled, c) != candidate_key(whole, c)
    # a stored config reads back as it ran: a new one keeps its pool; one stored before the pool was written
    # in read all the data (damoc.compat)
    from damoc.compat import graphcut_pool_as_ran
    from damoc.selection.config import SelectConfig

    assert SelectConfig(**graphcut_pool_as_ran(pooled.model_dump(mode="json"))).filter.options == pooled.filter.options
    old = pooled.model_dump(mode="json")
    old["filter"]["options"] = {"lam": 0.3}
    assert graphcut_pool_as_ran(old)["filter"]["options"] == {"lam": 0.3, "pool_factor": None}
    assert graphcut_pool_as_ran({**old, "filter": None}) == {**old, "filter": None}
    for bad in ("pool_factor=0.5", "pool_factor=abc", "pool_factor=inf", "lam=abc", "lamda=0.3"):
        assert main(["select", *argv, "--out", str(tmp_path / "r"), "--filter.options", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("damoc: error: filter:") and "\n" not in err and "Value error" not in err, err
    assert not (tmp_path / "r").exists()
    # `damoc filter` reads the same settings at the top level: a rule over several of them is the settings'
    out = str(tmp_path / "f.jsonl")
    assert main(["filter", "--task", "boolq", "--rate", "0.1", "--budget", "5", "--out", out]) == 2
    assert capsys.readouterr().err.strip() == ("damoc: error: settings: give exactly one of rate (a share) or budget "
                                               "(a count)")


def test_bad_values_are_one_line_naming_the_setting(tmp_path, capsys):
    assert main(["select", "--task", "boolq", "--models", "m", "--out", str(tmp_path / "r"),
                 "--prune.threshold", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("damoc: error: prune.threshold:") and "\n" not in err
    with pytest.raises(SystemExit) as e:  # argparse's own refusal: usage, then one error line
        main(["select", "--task", "boolq", "--models", "m", "--out", str(tmp_path / "r"), "--filter.method", "nope"])
    assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_shipped_run_files_open_with_their_command_and_validate():
    from damoc.recovery.run import RecoverConfig
    from damoc.runfile import read_run_file
    from damoc.selection.config import SelectConfig

    configs = shipped()
    assert {"demo", "zoo-nq-open-headline", "zoo-asdiv-headline", "recover-paser"} <= set(configs)
    for name, path in configs.items():
        command = first_line(path)
        assert command.startswith("damoc ") and f"{name}.yaml" in command
        model = RecoverConfig if command.startswith("damoc recover") else SelectConfig
        model(**read_run_file(path))


def test_configs_list_names_each_run_file(capsys):
    assert main(["configs", "list"]) == 0
    out = capsys.readouterr().out
    assert "damoc select --config demo.yaml --validate" in out
    assert main(["configs", "show", "nope"]) == 2


@pytest.mark.parametrize("argv,flag", [(["select", "--task", "boolq"], "--models"),
                                       (["recover", "--original", "bundled:smollm2-135m-instruct"], "--pruned")])
def test_a_missing_setting_names_its_flag_and_writes_nothing(tmp_path, capsys, argv, flag):
    from damoc.cli import main

    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"required: give {flag}" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra, said", [
    ([], []),
    (["--eval.budget", "0.3"], []),  # the fixed strategy under sequential evaluation uses it
    (["--strategy", "halving"], []),  # the default budget was not given: nothing to say
    (["--strategy", "halving", "--eval.budget", "0.3"], ["--eval.budget: not used"]),
    (["--eval.strategy", "full", "--eval.first", "50", "--eval.margin", "0.01"], ["--eval.first: not used"]),
    (["--strategy", "adaptive", "--eval.alpha", "0.1", "--eval.margin", "0.01"], ["--eval.alpha: not used"]),
    (["--strategy", "zero-shot", "--eval.settle", "0.1"], ["--eval.settle: not used"]),
])
def test_evaluation_settings_a_strategy_will_not_use_are_named(extra, said):
    config, _ = select_config(parse(["--task", "boolq", "--models", "m", *extra]))
    notes = config.unused_settings()
    assert len(notes) == len(said) and all(n.startswith(s) for n, s in zip(notes, said))


def test_a_run_files_evaluation_budget_reused_with_halving_is_named(tmp_path):
    path = write(tmp_path, {"strategy": "halving", "eval": {"budget": 0.5, "first": 50}})
    config, _ = select_config(parse(["--task", "boolq", "--models", "m", "--config", path]))
    assert config.unused_settings() == ["--eval.budget: not used, the evaluation budget applies to the fixed "
                                        "strategy only (halving rounds stop when their better half is decided)"]
