"""Training-time augmentation: novel mentions, mention replacement, upper-casing, options."""

from __future__ import annotations

import random

import pytest

from instructner.research.augment import (
    AugmentConfig,
    MentionBank,
    augment_sentence,
    novel_mentions,
    novel_word,
    option_subset,
    recombine_names,
    replace_mentions,
)
from instructner.research.data import make_sentence

SENTENCE = make_sentence(
    ["Angela", "Merkel", "met", "McDonald's", "staff", "in", "Paris", "on", "9/11", "."],
    ["B-PER", "I-PER", "O", "B-ORG", "O", "O", "B-LOC", "O", "B-MISC", "O"],
)


def _shape(word: str) -> str:
    return "".join(
        "A" if c.isupper() else "a" if c.isalpha() else "9" if c.isdigit() else c for c in word
    )


@pytest.mark.parametrize("word", ["Merkel", "McDonald's", "NATO", "9/11", "st.", "B-52", "é"])
def test_novel_word_keeps_case_length_digits_and_punctuation(word):
    rng = random.Random(0)
    for _ in range(50):
        made_up = novel_word(word, rng)
        assert _shape(made_up) == _shape(word)


def test_novel_word_alternates_consonants_and_vowels_within_a_run_of_letters():
    rng = random.Random(3)
    for _ in range(50):
        made_up = novel_word("Abcdefghij", rng).lower()
        kinds = ["v" if c in "aeiou" else "c" for c in made_up]
        assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False))


def test_novel_mentions_change_only_mention_words_and_keep_the_spans():
    made_up = novel_mentions(SENTENCE, 1.0, random.Random(1))
    assert made_up.spans == SENTENCE.spans and made_up.tags == SENTENCE.tags
    inside = {i for span in SENTENCE.spans for i in range(span.start, span.end)}
    for index, (old, new) in enumerate(zip(SENTENCE.tokens, made_up.tokens, strict=True)):
        if index in inside and any(c.isalnum() for c in old):
            assert new != old and _shape(new) == _shape(old)
        elif index not in inside:
            assert new == old


def test_novel_mentions_at_probability_zero_return_the_sentence_itself():
    assert novel_mentions(SENTENCE, 0.0, random.Random(0)) is SENTENCE


def test_novel_mentions_are_a_pure_function_of_the_seed():
    first = novel_mentions(SENTENCE, 0.5, random.Random(42))
    again = novel_mentions(SENTENCE, 0.5, random.Random(42))
    assert first == again


def test_novel_mentions_touch_about_the_given_share_of_mentions():
    rng = random.Random(7)
    changed = sum(novel_mentions(SENTENCE, 0.3, rng).tokens[6] != "Paris" for _ in range(2000))
    assert 500 <= changed <= 700


def test_augment_sentence_applies_novel_mentions_only_to_the_corpora_named():
    config = AugmentConfig(novel_mention={"conll2003": 1.0})
    assert config.active
    named = augment_sentence(SENTENCE, "conll2003", None, config, random.Random(0))
    other = augment_sentence(SENTENCE, "atis", None, config, random.Random(0))
    assert named.tokens[6] != "Paris" and other is SENTENCE


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_novel_mention_probability_outside_zero_one_is_rejected(value):
    with pytest.raises(ValueError, match=r"novel_mention\.conll2003 must be a probability"):
        AugmentConfig(novel_mention={"conll2003": value})


def test_mention_replacement_rebuilds_tags_for_the_new_mention_length():
    bank = MentionBank([make_sentence(["Jean", "Claude", "Juncker"], ["B-PER", "I-PER", "I-PER"])])
    swapped = replace_mentions(SENTENCE, bank, 1.0, random.Random(0))
    assert swapped.tokens[:3] == ("Jean", "Claude", "Juncker")
    assert swapped.tags[:4] == ("B-PER", "I-PER", "I-PER", "O")
    assert swapped.tokens[3:] == SENTENCE.tokens[2:]  # other tags have no bank entry: kept


NAME_BANK = MentionBank(
    [
        make_sentence(["Emmanuel", "Tetteh", "scored"], ["B-PER", "I-PER", "O"]),
        make_sentence(["Jean", "Claude", "Juncker", "spoke"], ["B-PER", "I-PER", "I-PER", "O"]),
        make_sentence(["Clinton", "said"], ["B-PER", "O"]),
        make_sentence(["Jean", "Sobral", "won"], ["B-PER", "I-PER", "O"]),
        make_sentence(["Reuters", "Holdings"], ["B-ORG", "I-ORG"]),
    ]
)


def test_name_parts_are_distinct_first_words_of_long_mentions_and_all_last_words():
    firsts, lasts = NAME_BANK.name_parts("PER")
    assert firsts == ["Emmanuel", "Jean"]  # "Jean" twice in the bank, listed once
    assert lasts == ["Clinton", "Juncker", "Sobral", "Tetteh"]
    assert NAME_BANK.name_parts("LOC") == ([], [])


def test_recombined_names_take_a_first_and_a_last_word_and_rebuild_the_tags():
    renamed = recombine_names(SENTENCE, NAME_BANK, {"PER": 1.0}, random.Random(3))
    first, last = renamed.tokens[:2]
    assert first in {"Emmanuel", "Jean"} and last in {"Clinton", "Juncker", "Sobral", "Tetteh"}
    assert renamed.tags[:2] == ("B-PER", "I-PER")
    assert renamed.tokens[2:] == SENTENCE.tokens[2:]  # only the tags named are touched
    assert [(s.start, s.end, s.tag) for s in renamed.spans] == [
        (s.start, s.end, s.tag) for s in SENTENCE.spans
    ]


def test_recombined_names_drop_middle_words_and_keep_one_word_mentions_one_word():
    three = make_sentence(
        ["Jean", "Claude", "Juncker", "met", "Clinton"], ["B-PER", "I-PER", "I-PER", "O", "B-PER"]
    )
    renamed = recombine_names(three, NAME_BANK, {"PER": 1.0}, random.Random(0))
    assert len(renamed.tokens) == 4
    assert renamed.tags == ("B-PER", "I-PER", "O", "B-PER")
    assert renamed.tokens[3] in NAME_BANK.name_parts("PER")[1]


def test_recombined_names_draw_each_distinct_word_about_equally_often():
    # "Jean" starts two of the three long mentions; drawn per distinct word it gets ~1/2.
    rng = random.Random(7)
    draws = [recombine_names(SENTENCE, NAME_BANK, {"PER": 1.0}, rng).tokens[0] for _ in range(2000)]
    assert 0.45 < draws.count("Emmanuel") / len(draws) < 0.55


def test_recombined_names_at_probability_zero_return_the_sentence_itself():
    assert recombine_names(SENTENCE, NAME_BANK, {"PER": 0.0}, random.Random(0)) is SENTENCE


def test_augment_sentence_recombines_names_only_in_the_corpora_named():
    config = AugmentConfig(name_recombine={"conll2003": {"PER": 1.0}})
    moved = augment_sentence(SENTENCE, "conll2003", NAME_BANK, config, random.Random(1))
    kept = augment_sentence(SENTENCE, "mit_movie", NAME_BANK, config, random.Random(1))
    assert moved.tokens[:2] != SENTENCE.tokens[:2]
    assert kept is SENTENCE
    assert config.active


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"conll2003": {"PER": 1.5}}, r"name_recombine\.conll2003\.PER must be a probability"),
        ({"conll2003": 0.5}, r"name_recombine\.conll2003 must map tags to probabilities"),
    ],
)
def test_name_recombine_values_that_are_not_tag_probabilities_are_rejected(value, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig(name_recombine=value)


def test_option_subset_lists_only_known_words_and_keeps_gold_when_told():
    words = [f"label{i}" for i in range(12)]
    config = AugmentConfig(option_subset=1.0, subset_keep_gold=1.0)
    rng = random.Random(5)
    for _ in range(100):
        chosen = option_subset(words, ["label3", "label9"], config, rng)
        assert {"label3", "label9"} <= set(chosen) <= set(words)
        assert len(chosen) == len(set(chosen))
