"""Training examples with callers' label words, distractors, letter case and packaged names."""

from __future__ import annotations

import random

from instructner.method.labels import get_verbalizer
from instructner.method.parser import parse_ner_answer
from instructner.method.prompts import parse_prompt
from instructner.research.augment import AugmentConfig, augment_sentence, recase
from instructner.research.data import make_sentence
from instructner.research.example_labels import distractor_pool, example_labels, word_group
from instructner.research.examples import sentence_examples
from instructner.research.names import base_tag, draw_name, fine_word

SENTENCE = make_sentence(
    "Angela Merkel met Emmanuel Macron in Paris .".split(),
    ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "O"],
)
CONLL = get_verbalizer("conll2003")


def test_label_words_name_every_entity_with_a_listed_option():
    config = AugmentConfig(label_words=1.0, distractors=1.0)
    for seed in range(30):
        rng = random.Random(seed)
        (example,) = sentence_examples(SENTENCE, CONLL, ["ner"], rng, "conll2003", config)
        _, sentence, options = parse_prompt(example.prompt)
        entities = parse_ner_answer(example.target, sentence, options)
        assert [e.text for e in entities] == ["Angela Merkel", "Emmanuel Macron", "Paris"]


def test_distractors_are_never_of_a_kind_the_corpus_has():
    pool = distractor_pool("conll2003")
    assert pool
    assert not {word_group(w) for w in pool} & {"person", "place", "organization", "misc"}
    assert "actor" not in pool and "city" not in pool


def test_a_fine_place_tag_is_answered_as_city_or_country_when_both_are_offered():
    sentence = make_sentence(["Tokyo", ",", "Japan"], ["B-LOC|city", "O", "B-LOC|country"])
    config = AugmentConfig(label_words=1.0)
    seen_fine = False
    for seed in range(20):
        labels = example_labels(
            CONLL, "conll2003", ["LOC|city", "LOC|country"], config, random.Random(seed)
        )
        if "city" in labels.options:
            seen_fine = True
            assert "country" in labels.options and "location" not in labels.options
            assert labels.word("LOC|city") == "city"
        else:
            assert labels.word("LOC|city") == "location"
    assert seen_fine
    assert sentence.spans[0].tag == "LOC|city"


def test_fine_tags_reduce_to_their_corpus_tag():
    assert base_tag("LOC|city") == "LOC" and fine_word("LOC|city") == "city"
    assert base_tag("PER") == "PER" and fine_word("PER") is None


def test_packaged_names_replace_person_mentions_with_listed_names():
    rng = random.Random(0)
    drawn = draw_name("PER", ("Angela", "Merkel"), rng, keep_accents=0.0)
    assert drawn is not None
    words, tag = drawn
    assert tag == "PER" and all(w.isascii() for w in words)
    assert draw_name("MISC", ("German",), rng, 0.0) is None


def test_case_augmentation_keeps_tags_and_spans():
    lower = recase(SENTENCE, "lower")
    assert lower.tokens[0] == "angela" and lower.spans == SENTENCE.spans
    config = AugmentConfig(case={"conll2003": 1.0})
    changed = augment_sentence(SENTENCE, "conll2003", None, config, random.Random(1))
    assert changed.tokens != SENTENCE.tokens and changed.spans == SENTENCE.spans


def test_without_new_levers_the_option_stream_is_unchanged():
    config = AugmentConfig(option_subset=0.5)
    rng_a, rng_b = random.Random(7), random.Random(7)
    a = sentence_examples(SENTENCE, CONLL, ["ner", "type"], rng_a, "conll2003", config)
    b = sentence_examples(SENTENCE, CONLL, ["ner", "type"], rng_b, "conll2003", config)
    assert a == b
