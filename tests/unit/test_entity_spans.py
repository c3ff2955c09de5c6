"""Typing by position: pinning the answer's mentions to the caller's spans."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructner.method.entity_spans import overlap, pin_to_spans, span_problem
from instructner.serving.errors import RequestError
from instructner.serving.requests import ExtractionRequest, requests_from_inputs, validate_request
from instructner.serving.results import window_result
from instructner.serving.windows import plan_windows

HILTON = "Paris Hilton visited Paris"
LABELS = ("person", "location")


def error_of(**kwargs) -> str:
    with pytest.raises(RequestError) as info:
        validate_request(**kwargs)
    return str(info.value)


def test_pin_gives_the_kth_mention_of_a_word_the_kth_given_span():
    pins = pin_to_spans(["Paris", "Paris"], [("Paris", (30, 35)), ("Paris", (0, 5))])
    assert pins == [[(0, 5)], [(30, 35)]]


def test_pin_lets_the_last_mention_of_a_word_type_its_spans_the_answer_named_no_more():
    pins = pin_to_spans(
        ["Paris", "Rome"], [("Paris", (0, 5)), ("Paris", (9, 14)), ("Rome", (20, 24))]
    )
    assert pins == [[(0, 5), (9, 14)], [(20, 24)]]


def test_pin_leaves_a_mention_beyond_the_given_spans_of_its_word_without_one():
    assert pin_to_spans(["Paris", "Paris"], [("Paris", (21, 26))]) == [[(21, 26)], []]


def test_pin_leaves_spans_of_a_word_the_answer_never_names_untyped():
    assert pin_to_spans(["Rome"], [("Paris", (0, 5)), ("Rome", (9, 13))]) == [[(9, 13)]]


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=4))
def test_pin_runs_in_linear_time_on_adversarial_repetition(scale):
    count = 20_000 * scale
    given_spans = [("a", (2 * i, 2 * i + 1)) for i in range(count)]
    started = time.perf_counter()
    pins = pin_to_spans(["a"] * count, given_spans)
    assert sum(len(p) for p in pins) == count
    assert time.perf_counter() - started < 2.0  # quadratic would take minutes


@pytest.mark.parametrize(
    ("span", "problem"),
    [
        ((21, 27), "21:27 is not a span of TEXT, which has 26 characters"),
        ((5, 5), "5:5 is not a span of TEXT"),
        ((-1, 5), "-1:5 is not a span of TEXT"),
        ((0, 4), "0:4 ('Pari') cuts through a word of TEXT"),
        ((5, 12), "5:12 (' Hilton') starts or ends with whitespace"),
    ],
)
def test_span_problem_names_the_span_and_what_is_wrong(span, problem):
    assert problem in span_problem(HILTON, span)


def test_span_problem_accepts_a_word_bounded_span():
    assert span_problem(HILTON, (21, 26)) is None
    assert span_problem(HILTON, (0, 12)) is None


def test_overlap_finds_a_clash_between_non_neighbours_in_input_order():
    assert overlap([(30, 35), (0, 12), (20, 25), (5, 8)]) == (1, 3)
    assert overlap([(0, 5), (6, 8)]) is None


def test_validate_request_accepts_spans_and_lets_their_words_repeat():
    request = validate_request(HILTON, "type", LABELS, ["Paris", "Paris"], spans=[(0, 5), (21, 26)])
    assert request.spans == ((0, 5), (21, 26))


@pytest.mark.parametrize(
    ("entities", "spans", "expected"),
    [
        (["Paris"], [(21, 27)], "ENTITY_SPANS: ENTITY_SPANS[0] 21:27 is not a span of TEXT"),
        (["Paris"], [(0, 4)], "ENTITY_SPANS: ENTITY_SPANS[0] 0:4 ('Pari') cuts through a word"),
        (
            ["Hilton"],
            [(0, 5)],
            "ENTITY_SPANS: ENTITY_SPANS[0] 0:5 is 'Paris' in TEXT, but ENTITIES[0] is 'Hilton'",
        ),
        (
            ["Paris"],
            [(0, 5), (21, 26)],
            "ENTITY_SPANS: has 2 spans for 1 ENTITIES words",
        ),
        (
            ["Paris", "Paris"],
            [(21, 26), (21, 26)],
            "ENTITY_SPANS: ENTITY_SPANS[1] 21:26 repeats ENTITY_SPANS[0] 21:26",
        ),
        (
            ["Paris Hilton", "Paris"],
            [(0, 12), (0, 5)],
            "ENTITY_SPANS: ENTITY_SPANS[1] 0:5 overlaps ENTITY_SPANS[0] 0:12",
        ),
    ],
)
def test_validate_request_names_the_bad_span(entities, spans, expected):
    assert error_of(
        text=HILTON, task="type", labels=LABELS, entities=entities, spans=spans
    ).startswith(expected)


def test_validate_request_refuses_spans_outside_the_typing_task():
    assert error_of(text=HILTON, task="ner", labels=LABELS, spans=[(0, 5)]) == (
        "ENTITY_SPANS: is not used by task 'ner'; leave it out"
    )


def test_validate_request_still_refuses_repeated_words_without_spans():
    assert "ENTITIES[1] 'Paris' repeats ENTITIES[0]" in error_of(
        text=HILTON, task="type", labels=LABELS, entities=["Paris", "Paris"]
    )


def inputs(spans: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "TEXT": np.array([[HILTON.encode()]], dtype=np.object_),
        "TASK": np.array([[b"type"]], dtype=np.object_),
        "LABELS": np.array([[b"person", b"location"]], dtype=np.object_),
        "ENTITIES": np.array([[b"Paris"]], dtype=np.object_),
        "ENTITY_SPANS": spans,
    }


def test_requests_from_inputs_reads_entity_spans_per_row():
    (request,) = requests_from_inputs(inputs(np.array([[[21, 26]]], dtype=np.int64)).get)
    assert request == ExtractionRequest(HILTON, "type", LABELS, ("Paris",), ((21, 26),))


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([[21, 26]], dtype=np.int64), "expected shape [batch, n, 2]"),
        (np.array([[[21, 26, 0]]], dtype=np.int64), "expected shape [batch, n, 2]"),
        (np.array([[[21.0, 26.0]]], dtype=np.float32), "expected INT64 or INT32 offsets"),
        (np.array([[[21, 26]], [[0, 5]]], dtype=np.int64), "has batch size 2, but TEXT has 1"),
    ],
)
def test_requests_from_inputs_refuses_malformed_entity_spans(array, expected):
    with pytest.raises(RequestError, match="^ENTITY_SPANS: ") as info:
        requests_from_inputs(inputs(array).get)
    assert expected in str(info.value)


def words(text: str, entities: tuple[str, ...]) -> int:
    """A stand-in prompt measure: 10 tokens of instruction plus one per word."""
    return 10 + len(text.split()) + sum(len(e.split()) for e in entities)


def test_plan_windows_carries_only_the_pinned_spans_relative_to_their_window():
    text = "Paris is big . Nothing here . Paris Hilton visited Paris ."
    second = text.rindex("Paris")
    request = ExtractionRequest(text, "type", LABELS, ("Paris",), ((second, second + 5),))
    (window,) = plan_windows(request, words, 100)
    assert window.text == "Paris Hilton visited Paris ."
    assert window.entities == ("Paris",)
    assert window.spans == ((21, 26),)
    start, end = window.spans[0]
    assert window.text[start:end] == "Paris"


def test_plan_windows_never_cuts_through_a_pinned_span():
    text = "a b c d e f g h New York City i j k New York City"
    first = text.index("New York City")
    request = ExtractionRequest(
        text, "type", ("place",), ("New York City",), ((first, first + 13),)
    )
    windows = plan_windows(request, words, 17)
    pinned = [w for w in windows if w.spans]
    assert len(pinned) == 1
    assert pinned[0].text[slice(*pinned[0].spans[0])] == "New York City"
    assert pinned[0].start + pinned[0].spans[0][0] == first


def test_window_result_places_the_typed_word_at_its_given_span():
    result = window_result(
        "type", HILTON, "Paris is a location.", LABELS, ("Paris",), spans=((21, 26),)
    )
    assert [(e.text, e.start, e.end, e.label) for e in result.entities] == [
        ("Paris", 21, 26, "location")
    ]


def test_window_result_types_both_spans_of_a_word_named_once_and_keeps_text_order():
    result = window_result(
        "type",
        HILTON,
        "Paris is a location, Paris Hilton is a person.",
        LABELS,
        ("Paris Hilton", "Paris"),
        spans=((0, 12), (21, 26)),
    )
    assert [(e.text, e.start, e.end, e.label) for e in result.entities] == [
        ("Paris Hilton", 0, 12, "person"),
        ("Paris", 21, 26, "location"),
    ]


def test_window_result_without_spans_keeps_the_first_free_occurrence():
    result = window_result("type", HILTON, "Paris is a location.", LABELS, ("Paris",))
    assert [(e.start, e.end) for e in result.entities] == [(0, 5)]


def test_requests_from_inputs_refuses_too_many_spans_from_the_shape_before_reading_them():
    array = np.zeros((1, 1_000_000, 2), dtype=np.int64)
    started = time.perf_counter()
    with pytest.raises(
        RequestError, match="^ENTITY_SPANS: has 1000000 spans, over the limit of 128"
    ):
        requests_from_inputs(inputs(array).get)
    assert time.perf_counter() - started < 0.5  # refused from the shape, not read


def test_requests_from_inputs_refuses_an_over_long_list_before_decoding_any_item():
    arrays = inputs(np.array([[[21, 26]]], dtype=np.int64))
    arrays["ENTITIES"] = np.array([[b"\xff"] * 129], dtype=np.object_)  # invalid UTF-8 each
    with pytest.raises(RequestError, match="^ENTITIES: has 129 entries, over the limit of 128$"):
        requests_from_inputs(arrays.get)
