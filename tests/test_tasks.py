import json
import re

import pytest

from damoc.errors import DamocError
from damoc.tasks import BUNDLED_TASKS, DataSpec, load_task
from damoc.tasks.base import render, split


@pytest.mark.parametrize("name", list(BUNDLED_TASKS))
def test_bundled_task_loads_with_fixed_split(name):
    a, b = load_task(name), load_task(name)
    assert len(a.train) > 0 and len(a.test) == BUNDLED_TASKS[name].test_size
    assert [e.id for e in a.test] == [e.id for e in b.test]  # seeded: the same every time
    assert not {e.id for e in a.train} & {e.id for e in a.test}
    for e in a.test[:20]:
        assert e.answer.strip()
        if a.is_choice:
            assert e.options[e.label] == e.answer


def test_pubmedqa_sizes_and_expert_test_split():
    t = load_task("pubmedqa")
    assert len(t.train) + len(t.test) == 1000
    assert all(e.id.startswith("pubmedqa-pqal-") for e in t.test)
    assert {e.answer for e in t.test} == {"yes", "no", "maybe"}


def test_split_is_seeded_and_rejects_degenerate_sizes():
    exs = [render("generation", id=str(i), question=f"q{i}", answer="a") for i in range(10)]
    assert split(exs, 3, seed=1) == split(exs, 3, seed=1)
    assert [e.id for e in split(exs, 3, seed=1)[1]] != [e.id for e in split(exs, 3, seed=2)[1]]
    with pytest.raises(DamocError):
        split(exs, 10)
    with pytest.raises(DamocError):
        split([], 0.5)


def test_user_classification_file_with_field_mapping(cls_file):
    t = load_task(data=DataSpec(path=cls_file, format="classification",
                                fields={"context": "passage", "label": "y"}))
    assert t.format == "classification" and len(t.train) == 24 and len(t.test) == 6
    assert t.meta["labels"] == ["maybe", "no", "yes"]
    e = t.train[0]
    assert e.context.startswith("case") and e.answer in e.options


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_user_files_in_each_format(tmp_path, suffix):
    import pandas as pd

    rows = [{"question": f"q {i}", "options": "A. red\nB. blue", "answer": "B" if i % 2 else "A"}
            for i in range(10)]
    path = tmp_path / f"mc{suffix}"
    if suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path)
    else:
        path.write_text(json.dumps(rows))
    t = load_task(data=DataSpec(path=path, format="multiple_choice", test_fraction=0.3))
    assert len(t.train) + len(t.test) == 10
    assert all(e.options == ("red", "blue") for e in t.train)
    assert {e.label for e in t.train + t.test} == {0, 1}


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "a", "label": "x"}\n{"question": "b", "label": \n')
    with pytest.raises(DamocError, match=r"bad.jsonl:2: malformed JSON"):
        load_task(data=DataSpec(path=path, format="classification"))


def test_missing_field_and_empty_and_binary_files(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"question": "a", "label": "x"}\n{"question": "b"}\n')
    with pytest.raises(DamocError, match=r"record 2 has no .*'label'"):
        load_task(data=DataSpec(path=path, format="classification"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DamocError, match="empty"):
        load_task(data=DataSpec(path=empty, format="generation"))
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(DamocError, match="UTF-8"):
        load_task(data=DataSpec(path=binary, format="generation"))
    with pytest.raises(DamocError, match="no such file"):
        load_task(data=DataSpec(path=tmp_path / "nope.jsonl", format="generation"))


def test_label_outside_the_options_is_refused(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}", "label": "yes"}) + "\n" for i in range(4))
                    + json.dumps({"question": "q", "label": "perhaps"}) + "\n")
    with pytest.raises(DamocError, match="'perhaps' is not one of"):
        load_task(data=DataSpec(path=path, format="classification", labels=["yes", "no"]))
    mc = tmp_path / "mc.jsonl"
    mc.write_text(json.dumps({"question": "q", "options": ["a", "b"], "answer": "D"}) + "\n")
    with pytest.raises(DamocError, match="not one of the 2 options"):
        load_task(data=DataSpec(path=mc, format="multiple_choice"))


def test_instruction_format_prompt():
    e = render("instruction", id="1", instruction="Summarise.", context="Long text.", answer="Short.")
    assert e.prompt == "### Instruction:\nSummarise.\n\n### Input:\nLong text.\n\n### Response:\n"
    assert e.answer == "Short."


def test_label_sorted_file_gives_a_stratified_test_set_in_seeded_order(tmp_path, capsys):
    """A balanced two-class file exported sorted by label: the test set, and every prefix of it
    (--test-limit), holds both classes in their shares."""
    import json as _json

    from damoc.cli import main
    from damoc.tasks import DataSpec, load_task

    rows = [{"question": f"q{i}", "passage": f"p{i}", "y": "yes" if i < 500 else "no"} for i in range(1000)]
    path = tmp_path / "sorted.jsonl"
    path.write_text("".join(_json.dumps(r) + "\n" for r in rows))
    spec = DataSpec(path=path, format="classification", fields={"context": "passage", "label": "y"},
                    test_fraction=0.3)
    task = load_task(None, spec)
    assert len(task.test) == 300
    for n in (10, 50, 300):
        counts = {a: sum(e.answer == a for e in task.test[:n]) for a in ("yes", "no")}
        assert abs(counts["yes"] - counts["no"]) <= max(2, n // 10), (n, counts)
    assert [e.id for e in task.test] != sorted(e.id for e in task.test)  # not file order
    assert [e.id for e in load_task(None, spec).test] == [e.id for e in task.test]  # seeded
    assert task.summary()["test_labels"] == {"yes": 150, "no": 150} or task.summary()["test_labels"] == {
        "no": 150, "yes": 150}
    argv = ["tasks", "show", "--data", str(path), "--format", "classification", "--field", "context=passage",
            "--field", "label=y", "--test-fraction", "0.3", "--test-limit", "20", "--train-limit", "40", "--json"]
    assert main(argv) == 0
    info = _json.loads(capsys.readouterr().out)
    assert info["test_used"] == 20 and info["test_used_labels"] == {"yes": 10, "no": 10}
    assert sum(info["train_used_labels"].values()) == 40 and info["label_warnings"] == []


def test_one_class_test_set_is_warned(tmp_path):
    from damoc.tasks.base import label_warnings, render

    yes = [render("classification", id=str(i), question="q", options=["yes", "no"], label=0) for i in range(5)]
    no = [render("classification", id=f"n{i}", question="q", options=["yes", "no"], label=1) for i in range(5)]
    assert any("one answer only" in w for w in label_warnings(yes + no, yes, "classification"))
    assert any("never seen in training" in w for w in label_warnings(yes, yes + no, "classification"))
    assert label_warnings(yes + no, yes[:2] + no[:2], "classification") == []


def test_multiple_choice_split_is_stratified_by_option_letter():
    from collections import Counter

    from damoc.tasks.base import render, split

    exs = [render("multiple_choice", id=str(i), question=f"q{i}", options=[f"a{i}", f"b{i}", f"c{i}", f"d{i}"],
                  label=i // 100) for i in range(400)]
    _, test = split(exs, 100, seed=3)
    assert Counter(e.label for e in test) == {0: 25, 1: 25, 2: 25, 3: 25}


def test_medmcqa_is_a_generation_task_with_answers_that_stand_without_the_options():
    from damoc.tasks.bundled import medmcqa_examples

    a, b = load_task("medmcqa"), load_task("medmcqa")
    assert a.format == "generation" and len(a.train) >= 1000 and len(a.test) >= 300
    assert [e.id for e in a.train] == [e.id for e in b.train] and [e.id for e in a.test] == [e.id for e in b.test]
    examples = a.train + a.test
    assert all(e.answer.strip() and not e.options for e in examples)
    assert not [e.answer for e in examples if re.match(r"[A-D]\. [A-Z][a-z]", e.answer)]  # option letters stripped
    refs = {"all of the above", "none of the above", "all of these", "all the above", "all of the following",
            "any of the above", "both", "both of the above", "all", "none", "1 and 2"}
    norm = [e.answer.lower().rstrip(".") for e in examples if e.answer != "ALL"]
    assert not [n for n in norm if n in refs or re.fullmatch(r"both (option )?[a-d1-4]+( and [1-4])?|[a-e]", n)]
    assert any(e.answer == "ALL" for e in examples)  # acute lymphoblastic leukaemia, not "all"
    def norm_q(e):
        return " ".join(re.sub(r"[^0-9a-z]+", " ", e.suffix.lower()).split())

    seen = {norm_q(e) for e in a.train}
    assert not [e for e in a.test if norm_q(e) in seen]  # no question on both sides, up to case and punctuation
    _, dropped = medmcqa_examples()
    assert len(examples) + sum(dropped.values()) == 4183  # the validation split: the test split has no answers
    assert dropped["refers to the options"] > 50 and dropped["duplicate"] > 10
