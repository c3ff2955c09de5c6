from hypothesis import given, settings
from hypothesis import strategies as st

from instructner.method.parser import (
    parse_answer,
    parse_extract_answer,
    parse_ner_answer,
    parse_type_answer,
)
from instructner.method.prompts import extract_answer, ner_answer
from instructner.method.types import Entity

CONLL = ["organization", "miscellaneous", "person", "location"]
SENTENCE = "EU rejects German call to boycott British lamb ."


def spans(entities):
    return [(e.text, e.label, e.start, e.end) for e in entities]


def test_parser_finds_all_entities_of_a_wellformed_answer():
    answer = "EU is an organization, German is a miscellaneous, British is a miscellaneous."
    assert spans(parse_ner_answer(answer, SENTENCE, CONLL)) == [
        ("EU", "organization", 0, 2),
        ("German", "miscellaneous", 11, 17),
        ("British", "miscellaneous", 34, 41),
    ]


def test_parser_returns_nothing_for_none_answer_in_any_case():
    for answer in ("None", "none.", " NONE ", "None."):
        assert parse_ner_answer(answer, SENTENCE, CONLL) == []
        assert parse_extract_answer(answer, SENTENCE) == []


def test_parser_returns_nothing_for_empty_answer():
    assert parse_ner_answer("", SENTENCE, CONLL) == []
    assert parse_extract_answer("", SENTENCE) == []


def test_repeated_word_takes_next_unused_occurrence_in_order():
    sentence = "Paris beat Lyon and Paris won in Paris"
    answer = "Paris is a organization, Lyon is an organization, Paris is a location."
    result = spans(parse_ner_answer(answer, sentence, CONLL))
    assert result == [
        ("Paris", "organization", 0, 5),
        ("Lyon", "organization", 11, 15),
        ("Paris", "location", 20, 25),
    ]


def test_repeated_word_falls_back_to_earlier_unused_occurrence_when_answer_is_out_of_order():
    sentence = "Paris and Lyon"
    answer = "Lyon is a location, Paris is a location."
    assert spans(parse_ner_answer(answer, sentence, CONLL)) == [
        ("Paris", "location", 0, 5),
        ("Lyon", "location", 10, 14),
    ]


def test_entity_named_more_often_than_it_occurs_loses_the_extras():
    sentence = "Paris and Paris"
    answer = "Paris is a location, Paris is a location, Paris is a location."
    assert [e.start for e in parse_ner_answer(answer, sentence, CONLL)] == [0, 10]


def test_match_respects_word_boundaries():
    sentence = "Parisian food in Paris"
    assert spans(parse_ner_answer("Paris is a location.", sentence, CONLL)) == [
        ("Paris", "location", 17, 22)
    ]


def test_substring_inside_a_word_is_not_an_entity():
    assert parse_ner_answer("Pari is a location.", "Parisian food", CONLL) == []


def test_entity_containing_comma_is_kept_whole():
    sentence = "He moved to Washington , D.C. last year"
    answer = "Washington , D.C. is a location."
    assert spans(parse_ner_answer(answer, sentence, CONLL)) == [
        ("Washington , D.C.", "location", 12, 29)
    ]


def test_entity_containing_is_a_is_kept_whole_when_sentence_says_so():
    sentence = "we watched the boy who is a legend yesterday"
    answer = "the boy who is a legend is a title."
    assert spans(parse_ner_answer(answer, sentence, ["title", "legend"])) == [
        ("the boy who is a legend", "title", 11, 34)
    ]


def test_regex_special_characters_match_literally():
    sentence = "I code C++ since (1999) and use .* patterns"
    answer = "C++ is a language, (1999) is a year, .* is a pattern."
    assert spans(parse_ner_answer(answer, sentence, ["language", "year", "pattern"])) == [
        ("C++", "language", 7, 10),
        ("(1999)", "year", 17, 23),
        (".*", "pattern", 32, 34),
    ]


def test_regex_like_entity_does_not_match_other_text():
    assert parse_ner_answer("P.ris is a location.", "Paris", CONLL) == []


def test_label_outside_options_is_dropped_and_next_entity_kept():
    sentence = "Paris and London"
    answer = "Paris is a city, London is a location."
    assert spans(parse_ner_answer(answer, sentence, CONLL)) == [("London", "location", 10, 16)]


def test_label_prefix_of_longer_unknown_label_is_not_accepted():
    assert parse_ner_answer("Paris is a location name.", "Paris", CONLL) == []


def test_longest_option_wins_when_options_share_a_prefix():
    sentence = "dinner at joes pizza"
    labels = ["restaurant", "restaurant name"]
    assert spans(parse_ner_answer("joes pizza is a restaurant name.", sentence, labels)) == [
        ("joes pizza", "restaurant name", 10, 20)
    ]


def test_hallucinated_entity_is_dropped():
    answer = "Berlin is a location, EU is an organization."
    assert spans(parse_ner_answer(answer, SENTENCE, CONLL)) == [("EU", "organization", 0, 2)]


def test_label_is_mapped_back_case_insensitively_to_option_as_given():
    result = parse_ner_answer("EU is an ORGANIZATION.", SENTENCE, ["Organization"])
    assert spans(result) == [("EU", "Organization", 0, 2)]


def test_wrong_article_is_accepted():
    assert spans(parse_ner_answer("EU is a organization.", SENTENCE, CONLL)) == [
        ("EU", "organization", 0, 2)
    ]


def test_answer_without_final_period_or_with_extra_spaces_is_parsed():
    answer = "EU  is an organization ,German is a miscellaneous"
    assert [e.text for e in parse_ner_answer(answer, SENTENCE, CONLL)] == ["EU", "German"]


def test_truncated_answer_keeps_complete_entities():
    answer = "EU is an organization, German is a misc"
    assert spans(parse_ner_answer(answer, SENTENCE, CONLL)) == [("EU", "organization", 0, 2)]


def test_unicode_text_offsets_are_character_offsets():
    sentence = "Zoë met Søren in Zürich 🇨🇭 today"
    answer = "Zoë is a person, Søren is a person, Zürich is a location."
    for entity in parse_ner_answer(answer, sentence, CONLL):
        assert sentence[entity.start : entity.end] == entity.text
    assert [e.text for e in parse_ner_answer(answer, sentence, CONLL)] == [
        "Zoë",
        "Søren",
        "Zürich",
    ]


def test_whitespace_difference_between_answer_and_sentence_maps_to_sentence_text():
    sentence = "flights to New   York today"
    result = parse_ner_answer("New York is a location.", sentence, CONLL)
    assert spans(result) == [("New   York", "location", 11, 21)]


def test_extract_answer_keeps_entity_with_comma_when_sentence_has_it_merged():
    sentence = "Washington , D.C. and Paris"
    assert spans(parse_extract_answer("Washington , D.C., Paris.", sentence)) == [
        ("Washington , D.C.", None, 0, 17),
        ("Paris", None, 22, 27),
    ]


def test_extract_answer_splits_adjacent_entities():
    sentence = "Paris , France"
    assert [e.text for e in parse_extract_answer("Paris, France.", sentence)] == [
        "Paris",
        "France",
    ]


def test_extract_answer_keeps_final_dot_only_when_it_belongs_to_the_entity():
    assert [e.text for e in parse_extract_answer("U.S..", "the U.S. said")] == ["U.S."]
    assert [e.text for e in parse_extract_answer("Paris.", "I love Paris.")] == ["Paris"]


def test_type_answer_keeps_only_requested_entities():
    answer = "EU is an organization, German is a miscellaneous."
    result = parse_type_answer(answer, SENTENCE, ["EU"], CONLL)
    assert spans(result) == [("EU", "organization", 0, 2)]


def test_parse_answer_dispatches_by_task():
    assert parse_answer("extract", "EU.", SENTENCE) == [Entity(0, 2, "EU", None)]


def test_parse_answer_rejects_unknown_task():
    import pytest

    with pytest.raises(ValueError, match="unknown task 'foo'"):
        parse_answer("foo", "EU.", SENTENCE)


def test_gold_answer_round_trips_through_parser_for_tricky_entities():
    sentence = "C++ , the language of ( 1999 ) , is a person is a location ."
    gold = [("C++ , the language of", "person"), ("( 1999 ) , is a person", "location")]
    answer = ner_answer(gold)
    assert [(e.text, e.label) for e in parse_ner_answer(answer, sentence, CONLL)] == gold


words = st.text(alphabet=st.sampled_from("ab,. isnoeP()+*?[]\\é"), min_size=0, max_size=40)


@settings(max_examples=400, deadline=None)
@given(answer=st.text(max_size=80), sentence=st.text(max_size=60), labels=st.lists(st.text()))
def test_parser_never_raises_and_spans_are_exact_for_arbitrary_text(answer, sentence, labels):
    for task in ("ner", "extract", "type"):
        result = parse_answer(task, answer, sentence, labels, entities=labels)
        for entity in result:
            assert sentence[entity.start : entity.end] == entity.text


@settings(max_examples=400, deadline=None)
@given(answer=words, sentence=words, labels=st.lists(words, max_size=4))
def test_parser_spans_are_exact_on_answer_like_text(answer, sentence, labels):
    result = parse_ner_answer(answer, sentence, labels)
    for entity in result:
        assert sentence[entity.start : entity.end] == entity.text
        assert entity.label in labels
    starts = [(e.start, e.end) for e in result]
    assert all(a[1] <= b[0] for a, b in zip(starts, starts[1:], strict=False))


@settings(max_examples=300, deadline=None)
@given(
    tokens=st.lists(
        st.sampled_from(["Paris", "EU", "C++", "(", ")", ",", "is", "a", "the"]), max_size=12
    ),
    data=st.data(),
)
def test_gold_entities_round_trip_for_generated_sentences(tokens, data):
    # Any set of non-overlapping token spans, turned into an answer, parses back exactly.
    sentence = " ".join(tokens)
    offsets, pos = [], 0
    for tok in tokens:
        offsets.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    cuts = sorted(data.draw(st.sets(st.integers(0, len(tokens)), max_size=6)))
    gold = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if b > a and data.draw(st.booleans()):
            label = data.draw(st.sampled_from(CONLL))
            gold.append((offsets[a][0], offsets[b - 1][1], label))
    pairs = [(sentence[s:e], lab) for s, e, lab in gold]
    parsed = parse_ner_answer(ner_answer(pairs), sentence, CONLL)
    # Offsets can differ only where the answer format is ambiguous: an untagged earlier
    # occurrence of the same text ("Paris Paris" with the second one tagged).
    assert [(e.text, e.label) for e in parsed] == pairs
    for entity in parsed:
        assert sentence[entity.start : entity.end] == entity.text
    if not any(t.startswith(",") or t.endswith(",") for t, _ in pairs):
        # "e1, e2." cannot tell an entity that is itself a comma from the separator.
        extracted = parse_extract_answer(extract_answer([t for t, _ in pairs]), sentence)
        assert [e.text for e in extracted] == [t for t, _ in pairs]


def test_an_entity_between_two_markers_is_found_when_the_markers_touch():
    # found by hypothesis: ", is a is an organization." holds the entity "is a"
    sentence = "Paris Paris Paris is a"
    answer = "Paris is an organization, is a is an organization."
    parsed = parse_ner_answer(answer, sentence, ["organization"])
    assert [(e.text, e.label) for e in parsed] == [
        ("Paris", "organization"),
        ("is a", "organization"),
    ]
