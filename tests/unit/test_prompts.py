import pytest

from instructner.method.prompts import (
    build_prompt,
    extract_answer,
    extract_prompt,
    ner_answer,
    ner_prompt,
    type_prompt,
)

SENTENCE = "EU rejects German call to boycott British lamb ."


def test_ner_prompt_matches_design_template():
    assert ner_prompt(SENTENCE, ["person", "location"]) == (
        "Sentence: EU rejects German call to boycott British lamb . Instruction: please extract "
        "entities and their types from the input sentence, all entity types are in options "
        "Options: person, location"
    )


def test_extract_prompt_has_no_options():
    assert extract_prompt(SENTENCE) == (
        "Sentence: EU rejects German call to boycott British lamb . Instruction: please extract "
        "entity words from the input sentence"
    )


def test_type_prompt_lists_given_entities_then_options():
    assert type_prompt(SENTENCE, ["EU", "German"], ["organization", "miscellaneous"]) == (
        "Sentence: EU rejects German call to boycott British lamb . Instruction: please typing "
        "these entity words according to sentence: EU, German Options: organization, miscellaneous"
    )


def test_ner_answer_uses_an_before_vowel_label_and_a_otherwise():
    answer = ner_answer([("EU", "organization"), ("Peter", "person")])
    assert answer == "EU is an organization, Peter is a person."


def test_answers_say_none_when_there_is_no_entity():
    assert ner_answer([]) == "None"
    assert extract_answer([]) == "None"


def test_extract_answer_joins_entities_with_commas_and_a_final_period():
    assert extract_answer(["EU", "German"]) == "EU, German."


def test_build_prompt_rejects_unknown_task_with_the_task_name():
    with pytest.raises(ValueError, match="unknown task 'summarize'"):
        build_prompt("summarize", SENTENCE)


def test_ner_prompt_without_labels_is_an_error():
    with pytest.raises(ValueError, match="labels must not be empty"):
        ner_prompt(SENTENCE, [])


def test_type_prompt_without_entities_is_an_error():
    with pytest.raises(ValueError, match="entities must not be empty"):
        type_prompt(SENTENCE, [], ["person"])


@pytest.mark.parametrize(
    ("task", "sentence", "labels", "entities"),
    [
        ("ner", "EU rejects German call .", ["organization", "person"], []),
        ("extract", "EU rejects German call .", [], []),
        ("type", "Crosby, Stills, Nash & Young play .", ["band"], ["Crosby, Stills, Nash & Young"]),
        # the sentence is data: it may hold the markers, the prompt's own are the last ones
        ("ner", "Sentence: x Instruction: y Options: a, b", ["person"], []),
        ("type", "Options: a Instruction: please typing", ["person", "band"], ["a"]),
    ],
)
def test_a_prompt_parses_back_into_its_task_sentence_and_labels(task, sentence, labels, entities):
    from instructner.method.prompts import build_prompt, parse_prompt

    assert parse_prompt(build_prompt(task, sentence, labels, entities)) == (task, sentence, labels)


def test_a_foreign_prompt_is_refused():
    from instructner.method.prompts import parse_prompt

    with pytest.raises(ValueError, match="not a prompt of this project"):
        parse_prompt("translate English to German: hello")
