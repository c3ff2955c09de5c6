"""Constrained NER decoding: the grammar admits gold answers and nothing outside the sentence."""

from __future__ import annotations

import pytest

from instructner.method.constrained import NerAnswerGrammar
from instructner.method.prompts import ner_answer
from instructner.modeling import load_tokenizer
from tests.shared_data import DATA_ROOT, MISSING

SENTENCE = "Angela Merkel met Emmanuel Macron in Paris on Tuesday , Paris !"
LABELS = ("person", "location", "organization", "departure city")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """The task tokenizer trained as `make tokenizer` trains it (a few seconds)."""
    if not DATA_ROOT.is_dir():
        pytest.skip(MISSING)
    from instructner.research.vocab import build_task_tokenizer

    return load_tokenizer(build_task_tokenizer(tmp_path_factory.mktemp("tok"), data_root=DATA_ROOT))


def _walk(grammar: NerAnswerGrammar, ids: list[int]) -> bool:
    return all(ids[i] in grammar.allowed(ids[:i]) for i in range(len(ids)))


@pytest.mark.parametrize(
    "pairs",
    [
        [("Angela Merkel", "person"), ("Paris", "location"), ("Paris", "location")],
        [("Emmanuel Macron", "person")],
        [("Paris", "departure city"), ("Tuesday", "organization")],
        [],
    ],
)
def test_every_answer_of_sentence_spans_and_option_labels_is_allowed(tokenizer, pairs):
    grammar = NerAnswerGrammar(tokenizer, SENTENCE, LABELS)
    assert _walk(grammar, tokenizer(ner_answer(pairs))["input_ids"])


@pytest.mark.parametrize(
    "answer",
    [
        "Berlin is a location.",  # not in the sentence
        "Paris is a city.",  # not an option
        "Merkel met is a person.",  # contains "met" then "is": allowed span, but check next
        "Angela is a person extra.",  # text after a label
        # an entity overlapping one already named, or a repeat beyond the sentence's
        # occurrences, may be written (the parser drops it) but must end the answer
        "Angela is a person, Angela Merkel is a person, Paris is a location.",
        "Merkel is a person, Angela Merkel is a person, Paris is a location.",
        "Paris is a location, Paris is a location, Paris is a location, Tuesday is a location.",
    ],
)
def test_answers_outside_the_sentence_or_options_are_not(tokenizer, answer):
    grammar = NerAnswerGrammar(tokenizer, SENTENCE, LABELS)
    ids = tokenizer(answer)["input_ids"]
    if answer.startswith("Merkel met"):
        assert _walk(grammar, ids)  # "Merkel met" is a word-bounded span of the sentence
        return
    assert not _walk(grammar, ids)


def test_none_ends_the_answer(tokenizer):
    grammar = NerAnswerGrammar(tokenizer, SENTENCE, LABELS)
    none = tokenizer("None")["input_ids"]
    assert _walk(grammar, none)
    assert grammar.allowed(none[:-1]) == [tokenizer.eos_token_id]


@pytest.mark.parametrize(
    "last",
    [
        "Angela Merkel is a person, Merkel is a person.",  # inside a named span
        "Merkel is a person, Angela Merkel is a person.",  # around one
        "Paris is a location, Paris is a location, Paris is a location.",  # a third Paris
    ],
)
def test_an_entity_the_parser_will_drop_may_end_the_answer(tokenizer, last):
    grammar = NerAnswerGrammar(tokenizer, SENTENCE, LABELS)
    assert _walk(grammar, tokenizer(last)["input_ids"])
    going_on = tokenizer(last[:-1] + ",", add_special_tokens=False)["input_ids"]
    assert not _walk(grammar, going_on)


def test_every_word_can_be_named_once_in_any_order(tokenizer):
    words = SENTENCE.split()
    grammar = NerAnswerGrammar(tokenizer, SENTENCE, LABELS)
    pairs = [(word, "location") for word in reversed(words)]
    assert _walk(grammar, tokenizer(ner_answer(pairs))["input_ids"])
    # with every word taken, one more entity may be written, and only as the last
    assert _walk(grammar, tokenizer(ner_answer([*pairs, ("Paris", "location")]))["input_ids"])
    longer = ner_answer([*pairs, ("Paris", "location"), ("Tuesday", "location")])
    assert not _walk(grammar, tokenizer(longer)["input_ids"])


def test_answers_that_never_stop_by_choice_end_within_a_bound_linear_in_the_sentence(tokenizer):
    """Random walks that avoid the end token and "." while they can must still end soon."""
    import random

    sentence = " ".join(["New York New York ,"] * 8)
    grammar = NerAnswerGrammar(tokenizer, sentence, LABELS)
    enders = {tokenizer.eos_token_id, *tokenizer(".", add_special_tokens=False)["input_ids"]}
    per_word = max(len(tokenizer(f"{w} is a departure city,")["input_ids"]) for w in LABELS)
    bound = (len(sentence.split()) + 1) * (per_word + 4)  # one entity more than words
    for seed in range(8):
        rng = random.Random(seed)
        ids: list[int] = []
        while not ids or ids[-1] != tokenizer.eos_token_id:
            allowed = grammar.allowed(ids)
            going_on = [t for t in allowed if t not in enders and "." not in tokenizer.decode([t])]
            ids.append(rng.choice(going_on or allowed))
            assert len(ids) <= bound, tokenizer.decode(ids)
