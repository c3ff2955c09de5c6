"""Label verbalizers: round trips, word hygiene, coverage of every tag in the shipped data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instructner.method.labels import CORPORA, Verbalizer, get_verbalizer, word_problems
from instructner.research.data import read_sentences
from tests.shared_data import DATA_ROOT, needs_data

README_TAGS = {
    "conll2003": {"PER", "ORG", "LOC", "MISC"},
    "mit_movie": {
        "ACTOR", "CHARACTER", "DIRECTOR", "GENRE", "PLOT", "RATING", "RATINGS_AVERAGE",
        "REVIEW", "SONG", "TITLE", "TRAILER", "YEAR",
    },
    "mit_restaurant": {
        "Amenity", "Cuisine", "Dish", "Hours", "Location", "Price", "Rating", "Restaurant_Name",
    },
}  # fmt: skip


def test_corpora_are_the_four_benchmarks():
    assert CORPORA == ("conll2003", "mit_movie", "mit_restaurant", "atis")


@pytest.mark.parametrize(("corpus", "count"), [
    ("conll2003", 4), ("mit_movie", 12), ("mit_restaurant", 8), ("atis", 83),
])  # fmt: skip
def test_verbalizer_has_one_word_per_tag(corpus, count):
    verbalizer = get_verbalizer(corpus)
    assert len(verbalizer.tags) == len(set(verbalizer.tags)) == count
    assert len({w.casefold() for w in verbalizer.words}) == count


@pytest.mark.parametrize("corpus", sorted(README_TAGS))
def test_verbalizer_tags_are_the_readme_label_set(corpus):
    assert set(get_verbalizer(corpus).tags) == README_TAGS[corpus]


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_tag_round_trips_through_its_word_in_any_case(corpus):
    verbalizer = get_verbalizer(corpus)
    for tag in verbalizer.tags:
        word = verbalizer.word(tag)
        assert verbalizer.tag(word) == tag
        assert verbalizer.tag(word.upper()) == tag
        assert verbalizer.tag(f" {word.title()} ") == tag
        assert verbalizer.has_word(word.upper())


@pytest.mark.parametrize("corpus", CORPORA)
def test_builtin_words_are_lowercase_and_free_of_answer_separators(corpus):
    for word in get_verbalizer(corpus).words:
        assert word_problems(word) == [], word


@pytest.mark.parametrize(("corpus", "tag", "word"), [
    ("conll2003", "PER", "person"),
    ("conll2003", "ORG", "organization"),
    ("conll2003", "LOC", "location"),
    ("conll2003", "MISC", "miscellaneous"),
    ("mit_movie", "RATINGS_AVERAGE", "average ratings"),
    ("mit_movie", "TITLE", "title"),
    ("mit_restaurant", "Restaurant_Name", "restaurant name"),
    ("atis", "fromloc.city_name", "departure city"),
    ("atis", "toloc.city_name", "arrival city"),
    ("atis", "depart_date.day_name", "departure day name"),
])  # fmt: skip
def test_known_tags_have_the_expected_words(corpus, tag, word):
    assert get_verbalizer(corpus).word(tag) == word


@pytest.mark.parametrize(
    ("word", "problem"),
    [
        ("new, york", "contains ','"),
        ("u.s. city", "contains '.'"),
        ("city is a place", "contains ' is a'"),
        ("Person", "is not lowercase"),
        (" person", "has surrounding whitespace"),
        ("  ", "is empty"),
    ],
)
def test_word_problems_names_each_unfit_word(word, problem):
    assert problem in word_problems(word)


def test_unknown_tag_error_names_tag_and_corpus():
    with pytest.raises(KeyError, match=r"unknown tag 'PERSON' for corpus 'conll2003'"):
        get_verbalizer("conll2003").word("PERSON")


def test_tag_lookup_is_case_sensitive():
    with pytest.raises(KeyError, match="unknown tag 'per'"):
        get_verbalizer("conll2003").word("per")


def test_unknown_word_error_names_word_and_corpus():
    verbalizer = get_verbalizer("atis")
    assert not verbalizer.has_word("departure town")
    with pytest.raises(KeyError, match=r"unknown label word 'departure town' for corpus 'atis'"):
        verbalizer.tag("departure town")


def test_unknown_corpus_lists_known_ones():
    with pytest.raises(ValueError, match="unknown corpus 'wnut'; known corpora: conll2003, mit"):
        get_verbalizer("wnut")


def test_verbalizer_is_frozen_and_mapping_is_a_copy():
    verbalizer = get_verbalizer("conll2003")
    with pytest.raises(dataclasses.FrozenInstanceError):
        verbalizer.tags = ()  # type: ignore[misc]
    mapping = verbalizer.mapping()
    assert mapping == {
        "PER": "person", "ORG": "organization", "LOC": "location", "MISC": "miscellaneous",
    }  # fmt: skip
    mapping["PER"] = "human"
    assert verbalizer.word("PER") == "person"


def test_from_words_maps_free_words_to_themselves_as_written():
    verbalizer = Verbalizer.from_words(["Drug Name", "dose, daily", "side effect is a risk"])
    assert verbalizer.tag("drug name") == "Drug Name"
    assert verbalizer.word("dose, daily") == "dose, daily"
    assert verbalizer.tags == verbalizer.words


@given(
    st.lists(
        st.text(min_size=1, max_size=12).filter(lambda w: w.strip()),
        min_size=1,
        max_size=8,
        unique_by=lambda w: w.strip().casefold(),
    )
)
def test_from_words_accepts_any_unique_non_empty_words(words):
    verbalizer = Verbalizer.from_words(words)
    for word in words:
        assert verbalizer.tag(word) == word
        assert verbalizer.tag(word.casefold()) == word
        assert verbalizer.word(word) == word


def test_from_words_rejects_words_equal_ignoring_case():
    with pytest.raises(ValueError, match=r"word 'Person' of tag 'Person' is the same .* 'person'"):
        Verbalizer.from_words(["person", "Person"])


@pytest.mark.parametrize("words", [[], ["person", " "], ["person", ""]])
def test_from_words_rejects_empty_word_lists_and_blank_words(words):
    with pytest.raises(ValueError, match="no labels given|empty"):
        Verbalizer.from_words(words)


def test_from_pairs_rejects_duplicate_tags():
    with pytest.raises(ValueError, match="duplicate tag 'PER'"):
        Verbalizer.from_pairs([("PER", "person"), ("PER", "human")], corpus="mine")


def test_from_pairs_keeps_order_and_corpus_name():
    verbalizer = Verbalizer.from_pairs([("B", "beta"), ("A", "alpha")], corpus="mine")
    assert verbalizer.tags == ("B", "A") and verbalizer.corpus == "mine"
    assert verbalizer.tag("ALPHA") == "A"


# --- coverage of the shipped data (skipped without ../shared) -----------------------------


def tags_in(paths: list[Path]) -> set[str]:
    return {span.tag for path in paths for s in read_sentences(path) for span in s.spans}


@needs_data
def test_atis_verbalizer_covers_exactly_the_83_slot_types_of_all_splits():
    seqio = tags_in([DATA_ROOT / "atis" / split for split in ("train", "valid", "test")])
    jointslu = tags_in(sorted((DATA_ROOT / "atis" / "jointslu").glob("*.iob")))
    train = tags_in([DATA_ROOT / "atis" / "train"])
    assert len(seqio) == 83 and len(train) == 79
    assert seqio == jointslu == set(get_verbalizer("atis").tags)


CORPUS_FILES = {
    "conll2003": ["conll2003/train.txt", "conll2003/valid.txt", "conll2003/test.txt",
                  "fewshot/lightner_deepke/conll2003/indomain-train.txt"],
    "mit_movie": ["mit_movie/engtrain.bio", "mit_movie/engtest.bio",
                  "fewshot/lightner_deepke/mit-movie/500-shot-train.txt"],
    "mit_restaurant": ["mit_restaurant/restauranttrain.bio", "mit_restaurant/restauranttest.bio",
                       "fewshot/lightner_deepke/mit-restaurant/500-shot-train.txt"],
    "atis": ["atis/train", "atis/valid", "atis/test",
             "fewshot/lightner_deepke/atis/50-shot-train.txt"],
}  # fmt: skip


@needs_data
@pytest.mark.parametrize("corpus", CORPORA)
def test_every_tag_in_the_corpus_files_has_a_word(corpus):
    verbalizer = get_verbalizer(corpus)
    found = tags_in([DATA_ROOT / relative for relative in CORPUS_FILES[corpus]])
    assert {tag for tag in found if not verbalizer.has_tag(tag)} == set()
    if corpus != "atis":
        assert found == set(verbalizer.tags)
