import pytest

from instructner.serving.results import merge_windows, window_result
from tests.harness import result_to_dict

DOC = "Peter Blackburn went home . The EU said no ."


def test_window_result_parses_the_answer_into_entities_of_the_window_text():
    result = window_result(
        "ner", "The EU said no .", "EU is an organization.", ("organization",), (), 20, 5, False
    )
    assert result_to_dict(result) == {
        "task": "ner",
        "entities": [{"text": "EU", "label": "organization", "start": 4, "end": 6, "score": None}],
        "generated_text": "EU is an organization.",
        "windows": [
            {
                "start": 0,
                "end": 16,
                "generated_text": "EU is an organization.",
                "input_tokens": 20,
                "output_tokens": 5,
                "output_limit_reached": False,
            }
        ],
    }


def test_window_result_leaves_the_label_unset_for_extraction():
    result = window_result("extract", "The EU said no .", "EU.")
    assert not result.entities[0].HasField("label")
    assert result_to_dict(result)["entities"] == [
        {"text": "EU", "label": None, "start": 4, "end": 6, "score": None}
    ]


def test_merge_windows_shifts_offsets_and_joins_answers_by_line():
    first = window_result(
        "ner",
        "Peter Blackburn went home .",
        "Peter Blackburn is a person.",
        ("person", "organization"),
    )
    second = window_result(
        "ner", "The EU said no .", "EU is an organization.", ("person", "organization")
    )
    merged = merge_windows("ner", DOC, [(0, first), (28, second)])
    assert [(e.text, e.start, e.end) for e in merged.entities] == [
        ("Peter Blackburn", 0, 15),
        ("EU", 32, 34),
    ]
    assert [(w.start, w.end) for w in merged.windows] == [(0, 27), (28, 44)]
    assert merged.generated_text == "Peter Blackburn is a person.\nEU is an organization."


def test_merge_windows_refuses_offsets_that_do_not_match_the_document():
    part = window_result("extract", "The EU said no .", "EU.")
    with pytest.raises(ValueError, match="does not match the document text"):
        merge_windows("extract", DOC, [(27, part)])
