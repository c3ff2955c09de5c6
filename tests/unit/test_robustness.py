"""Robustness variants: every transform keeps the gold spans on the right characters."""

from __future__ import annotations

import pytest

from instructner.method.label_words import EVAL_WORDS, TRAIN_WORDS, caller_word
from instructner.method.labels import CORPORA, get_verbalizer
from instructner.research.data import make_sentence
from instructner.research.robustness import VARIANTS, make_case, natural

TOKENS = "Germany 's representative to the European Union , Werner Zwingmann , said ( Reuters ) ."
TAGS = "B-LOC O O O O B-ORG I-ORG O B-PER I-PER O O O B-ORG O O"
SENTENCE = make_sentence(TOKENS.split(), TAGS.split())
GOLD_TEXTS = ["Germany", "European Union", "Werner Zwingmann", "Reuters"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_keeps_every_gold_span_on_its_mention(variant):
    case = make_case(SENTENCE, "conll2003", variant, 0)
    assert len(case.gold) == 4
    texts = [case.text[s:e] for s, e, _ in case.gold]
    if variant == "accents":
        assert texts[1:] != GOLD_TEXTS[1:]  # diacritics or other names
        assert all(t for t in texts)
    elif variant.startswith("case-"):
        assert [t.lower() for t in texts] == [g.lower() for g in GOLD_TEXTS]
    else:
        assert texts == GOLD_TEXTS


def test_natural_text_attaches_punctuation_and_clitics():
    rendered = natural(SENTENCE)
    assert rendered.text == (
        "Germany's representative to the European Union, Werner Zwingmann, said (Reuters)."
    )


def test_accents_variant_writes_non_ascii_text_deterministically():
    first = make_case(SENTENCE, "conll2003", "accents", 3)
    assert first == make_case(SENTENCE, "conll2003", "accents", 3)
    assert any(ord(c) > 127 for c in first.text)


def test_label_words_merge_types_that_share_a_word():
    sentence = make_sentence(
        "flights from boston to denver".split(),
        ["O", "O", "B-fromloc.city_name", "O", "B-toloc.city_name"],
    )
    case = make_case(sentence, "atis", "label-words", 0)
    assert [label for _, _, label in case.gold] == ["city", "city"]
    assert case.requests[0].count("city") == 1


def test_options_single_sends_one_request_per_label():
    case = make_case(SENTENCE, "conll2003", "options-single", 0)
    assert case.requests == (("person",), ("organization",), ("location",), ("miscellaneous",))


def test_unknown_variant_is_refused_with_the_list():
    with pytest.raises(ValueError, match="unknown variant 'typo': expected one of plain"):
        make_case(SENTENCE, "conll2003", "typo", 0)


def test_evaluation_words_are_never_training_or_corpus_words():
    seen = {w for corpus in CORPORA for words in TRAIN_WORDS[corpus].values() for w in words}
    seen |= {w for corpus in CORPORA for w in get_verbalizer(corpus).words}
    unseen = {w for corpus in CORPORA for w in EVAL_WORDS[corpus].values()}
    assert not unseen & seen


def test_word_lists_name_only_tags_of_their_corpus():
    for corpus in CORPORA:
        tags = set(get_verbalizer(corpus).tags)
        assert set(TRAIN_WORDS[corpus]) <= tags
        assert set(EVAL_WORDS[corpus]) <= tags


def test_caller_word_is_a_training_word_other_than_the_corpus_word():
    assert caller_word("conll2003", "ORG") == "company"
    assert caller_word("atis", "fromloc.city_name") == "city"
