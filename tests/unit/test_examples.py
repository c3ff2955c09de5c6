import pytest

from instructner.method.labels import get_verbalizer
from instructner.research.data import make_sentence
from instructner.research.examples import (
    CorpusSentences,
    build_examples,
    check_tasks,
    sentence_examples,
)

CONLL = get_verbalizer("conll2003")
CONLL_OPTIONS = "person, organization, location, miscellaneous"
NER_INSTRUCTION = (
    "Instruction: please extract entities and their types from the input sentence, "
    "all entity types are in options"
)


def _sentence(text: str, tags: str):
    return make_sentence(text.split(), tags.split())


JOHN = _sentence("John lives in New York .", "B-PER O O B-LOC I-LOC O")
EMPTY = _sentence("it rains .", "O O O")


def test_ner_example_lists_entities_in_sentence_order_with_label_words():
    (example,) = sentence_examples(JOHN, CONLL, tasks=["ner"])
    assert example.prompt == (
        f"Sentence: John lives in New York . {NER_INSTRUCTION} Options: {CONLL_OPTIONS}"
    )
    assert example.target == "John is a person, New York is a location."
    assert example.task == "ner"


def test_ner_target_uses_an_before_vowel_label_word():
    sentence = _sentence("Apple sells phones", "B-ORG O O")
    (example,) = sentence_examples(sentence, CONLL, tasks=["ner"])
    assert example.target == "Apple is an organization."


def test_extract_example_lists_entity_texts_without_types():
    (example,) = sentence_examples(JOHN, CONLL, tasks=["extract"])
    assert example.prompt == (
        "Sentence: John lives in New York . "
        "Instruction: please extract entity words from the input sentence"
    )
    assert example.target == "John, New York."


def test_type_example_gives_gold_entity_texts_and_asks_for_their_types():
    (example,) = sentence_examples(JOHN, CONLL, tasks=["type"])
    assert example.prompt == (
        "Sentence: John lives in New York . Instruction: please typing these entity words "
        f"according to sentence: John, New York Options: {CONLL_OPTIONS}"
    )
    assert example.target == "John is a person, New York is a location."


def test_sentence_without_entities_answers_none_and_has_no_typing_example():
    examples = sentence_examples(EMPTY, CONLL)
    assert [(e.task, e.target) for e in examples] == [("ner", "None"), ("extract", "None")]


def test_all_tasks_come_in_fixed_task_order_whatever_order_is_asked():
    examples = sentence_examples(JOHN, CONLL, tasks=["type", "ner", "extract"])
    assert [e.task for e in examples] == ["ner", "extract", "type"]


def test_ner_only_switch_builds_only_ner_examples():
    corpus = CorpusSentences("conll2003", [JOHN, EMPTY], CONLL)
    examples = build_examples([corpus], tasks=["ner"])
    assert [e.task for e in examples] == ["ner", "ner"]


def test_unknown_task_is_rejected_with_the_known_names():
    with pytest.raises(ValueError, match=r"unknown tasks \['spans'\]: expected some of ner"):
        check_tasks(["ner", "spans"])


def test_empty_task_list_is_rejected():
    with pytest.raises(ValueError, match="no task chosen"):
        check_tasks([])


def test_unknown_tag_names_the_tag_and_corpus():
    sentence = _sentence("Paris", "B-CITY")
    with pytest.raises(KeyError, match="unknown tag 'CITY' for corpus 'conll2003'"):
        sentence_examples(sentence, CONLL)


def _options(prompt: str) -> list[str]:
    return prompt.split(" Options: ")[1].split(", ")


def _many_sentences():
    return [_sentence(f"John{i} visited Rome", "B-PER O B-LOC") for i in range(20)]


def test_option_shuffling_is_deterministic_for_a_seed():
    corpus = CorpusSentences("conll2003", _many_sentences(), CONLL)
    first = build_examples([corpus], shuffle_options=True, seed=7)
    again = build_examples([corpus], shuffle_options=True, seed=7)
    assert first == again


def test_option_shuffling_changes_order_but_keeps_the_option_set():
    corpus = CorpusSentences("conll2003", _many_sentences(), CONLL)
    examples = [
        e for e in build_examples([corpus], shuffle_options=True, seed=7) if e.task != "extract"
    ]
    orders = {tuple(_options(e.prompt)) for e in examples}
    assert len(orders) > 1
    assert all(sorted(order) == sorted(CONLL.words) for order in orders)
    other_seed = build_examples([corpus], shuffle_options=True, seed=8)
    assert [e.prompt for e in other_seed] != [e.prompt for e in build_examples([corpus], seed=7)]


def test_without_shuffling_options_keep_corpus_order():
    corpus = CorpusSentences("conll2003", _many_sentences(), CONLL)
    examples = build_examples([corpus], shuffle_options=False)
    assert {tuple(_options(e.prompt)) for e in examples if e.task != "extract"} == {CONLL.words}


def test_targets_do_not_depend_on_option_order():
    corpus = CorpusSentences("conll2003", [JOHN], CONLL)
    shuffled = build_examples([corpus], shuffle_options=True, seed=3)
    plain = build_examples([corpus], shuffle_options=False)
    assert [e.target for e in shuffled] == [e.target for e in plain]


def test_mixed_corpora_each_use_their_own_label_words():
    restaurant = get_verbalizer("mit_restaurant")
    dish = _sentence("cheap pizza nearby", "B-Price B-Dish B-Location")
    examples = build_examples(
        [
            CorpusSentences("conll2003", [JOHN], CONLL),
            CorpusSentences("mit_restaurant", [dish], restaurant),
        ],
        tasks=["ner"],
        shuffle_options=False,
    )
    assert [e.corpus for e in examples] == ["conll2003", "mit_restaurant"]
    assert _options(examples[1].prompt) == list(restaurant.words)
    assert examples[1].target == ("cheap is a price, pizza is a dish, nearby is a location.")


def test_copy_examples_answer_with_the_sentence_itself_at_the_given_share():
    corpus = CorpusSentences("conll2003", _many_sentences() * 20, CONLL)
    examples = build_examples([corpus], tasks=["ner"], seed=4, copy_probability=0.3)
    copies = [e for e in examples if e.task == "copy"]
    assert 0.2 * len(corpus.sentences) < len(copies) < 0.4 * len(corpus.sentences)
    for example in copies:
        assert example.prompt == (
            f"Sentence: {example.target} Instruction: please copy the input sentence"
        )
        assert example.corpus == "conll2003"
    all_copies = build_examples([corpus], tasks=["ner"], copy_probability=1.0)
    assert [e.target for e in all_copies if e.task == "copy"] == [s.text for s in corpus.sentences]


def test_without_copies_the_examples_are_those_of_a_run_that_never_had_them():
    corpus = CorpusSentences("conll2003", _many_sentences(), CONLL)
    probability = {"extract": 0.5, "type": 0.3}
    plain = build_examples([corpus], seed=9, task_probability=probability)
    off = build_examples([corpus], seed=9, task_probability=probability, copy_probability=0.0)
    assert plain == off


@pytest.mark.parametrize("value", [-0.5, 2.0])
def test_copy_probability_outside_zero_one_is_rejected(value):
    corpus = CorpusSentences("conll2003", [JOHN], CONLL)
    with pytest.raises(ValueError, match="copy_probability must be in"):
        build_examples([corpus], copy_probability=value)
