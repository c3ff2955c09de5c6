"""Typing by position in the client: (start, end) spans through every call and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from instructner_client import InvalidInputError
from instructner_client._codec import encode_request
from instructner_client._core import batch_requests
from instructner_client._document import document_requests, split_document
from instructner_client._validation import make_request
from test_client_calls import FakeTriton, client_with

HILTON = "Paris Hilton visited Paris"
LABELS = ["person", "location"]


def test_spans_become_the_entity_words_and_the_spans_of_the_request():
    request = make_request("type", HILTON, LABELS, [(0, 12), (21, 26)])
    assert request.entities == ("Paris Hilton", "Paris")
    assert request.spans == ((0, 12), (21, 26))


def test_spans_may_name_the_same_word_twice_and_come_as_lists():
    request = make_request("type", HILTON, LABELS, [[21, 26], [0, 5]])
    assert request.entities == ("Paris", "Paris")
    assert request.spans == ((21, 26), (0, 5))


def test_words_leave_the_request_without_spans():
    assert make_request("type", HILTON, LABELS, ["Paris"]).spans is None


@pytest.mark.parametrize(
    ("entities", "message"),
    [
        (
            [(21, 27)],
            r"entities\[0\] \(21, 27\) is not a span of the text, which has 26 characters",
        ),
        ([(5, 5)], r"entities\[0\] \(5, 5\) is not a span of the text"),
        ([(5, 12)], r"entities\[0\] \(5, 12\) ' Hilton' starts or ends with whitespace"),
        ([(0, "5")], r"entities\[0\] \(0, '5'\) must be a \(start, end\) pair of integers"),
        ([(0, 5, 7)], r"entities\[0\] \(0, 5, 7\) must be a \(start, end\) pair of integers"),
        ([(True, 5)], r"must be a \(start, end\) pair of integers"),
        ([(21, 26), (21, 26)], r"entities\[1\] \(21, 26\) repeats entities\[0\] \(21, 26\)"),
        ([(0, 12), (0, 5)], r"entities\[1\] \(0, 5\) overlaps entities\[0\] \(0, 12\)"),
        (["Paris", (21, 26)], "entities mixes words and \\(start, end\\) spans"),
    ],
)
def test_bad_spans_fail_before_sending_naming_the_entity(entities, message):
    with pytest.raises(InvalidInputError, match=message):
        make_request("type", HILTON, LABELS, entities)


def test_the_request_sends_entity_spans_as_int64_batch_n_2():
    tensors = {
        t.name(): t for t in encode_request(make_request("type", HILTON, LABELS, [(21, 26)]))
    }
    spans = tensors["ENTITY_SPANS"]
    assert spans.shape() == [1, 1, 2]
    assert spans.datatype() == "INT64"
    assert np.frombuffer(spans._get_content(), dtype=np.int64).tolist() == [21, 26]


def test_a_request_by_words_sends_no_entity_spans():
    tensors = encode_request(make_request("type", HILTON, LABELS, ["Paris"]))
    assert "ENTITY_SPANS" not in {t.name() for t in tensors}


def test_type_by_span_sends_the_words_and_the_spans():
    fake = FakeTriton()
    client_with(fake).type(HILTON, [(21, 26)], LABELS)
    assert fake.calls[-1]["ENTITIES"] == ["Paris"]
    assert fake.calls[-1]["ENTITY_SPANS"] == [(21, 26)]


def test_type_batch_takes_spans_per_text_and_names_the_bad_item():
    requests = batch_requests("type", [HILTON, "Ann met Bob"], LABELS, [[(21, 26)], [(20, 30)]])
    assert requests[0].spans == ((21, 26),)
    assert isinstance(requests[1], InvalidInputError)
    assert "texts[1]: entities[0] (20, 30) is not a span of the text" in requests[1].message


def test_a_document_split_never_falls_inside_a_given_span():
    text = "aaaa bbbb cccc dddd eeee ffff"
    for offset, part in split_document(text, 12, protected=[(5, 14)]):
        assert not (offset < 5 < offset + len(part) < 14)
        end = offset + len(part)
        assert not 5 < end < 14


def test_document_parts_carry_the_spans_inside_them_shifted_to_the_part():
    text = ("Nothing here . " * 3000) + HILTON + " ."
    second = len(text) - 2 - len("Paris")
    offsets, requests = document_requests("type", text, LABELS, [(second, second + 5)], 0.0, 20_000)
    assert len(requests) == 1  # the part without the span is not sent
    (offset,), (request,) = offsets, requests
    start, end = request.spans[0]
    assert request.text[start:end] == "Paris"
    assert offset + start == second


def test_type_document_merges_spans_back_into_document_offsets():
    fake = FakeTriton()
    text = ("Paris is big . " * 2000) + HILTON
    second = len(text) - len("Paris")
    client = client_with(fake)
    entities = client.type_document(text, [(0, 5), (second, second + 5)], LABELS)
    assert all(text[e.start : e.end] == e.text for e in entities)
    sent = [call["ENTITY_SPANS"] for call in fake.calls]
    assert len(sent) == 2 and all(len(spans) == 1 for spans in sent)
