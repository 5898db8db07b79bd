import pytest
from conftest import build_tokenizer

from damoc.encoding import encode, leading_special_ids
from damoc.errors import DamocError
from damoc.tasks.base import continuation, render


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_pieces_concatenate_and_answer_is_the_tail(tok):
    e = render("classification", id="1", question="is it?", context="some context here",
               options=["yes", "no"], label=0)
    enc = encode(tok, e, continuation(e), max_len=512)
    assert enc.input_ids[:1] == leading_special_ids(tok) == [tok.bos_token_id]
    assert tok.decode(enc.input_ids[enc.n_prompt:]) == " yes"
    assert tok.decode(enc.input_ids[1:enc.n_prompt]) == e.prompt
    assert not enc.truncated


def test_only_the_context_is_cut_to_fit(tok):
    e = render("classification", id="1", question="is it?", context="word " * 400,
               options=["yes", "no"], label=0)
    full = encode(tok, e, continuation(e), max_len=10_000)
    enc = encode(tok, e, continuation(e), max_len=64)
    assert len(enc.input_ids) == 64 and enc.truncated
    tail = tok.decode(enc.input_ids[enc.n_prompt - 8:])
    assert "Answer: yes" in tail and tok.decode(full.input_ids[-8:]) in tok.decode(enc.input_ids)
    with_eos = encode(tok, e, continuation(e), max_len=64, add_eos=True)
    assert with_eos.input_ids[-1] == tok.eos_token_id and len(with_eos.input_ids) == 64


def test_question_longer_than_the_maximum_is_a_clear_error(tok):
    e = render("generation", id="q7", question="why " * 200, answer="because")
    with pytest.raises(DamocError, match="q7.*raise --max-seq-len"):
        encode(tok, e, continuation(e), max_len=32)
