import json

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
