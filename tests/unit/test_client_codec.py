"""Request tensors and the decoding of hand-built ExtractionResult messages into entities."""

import re

import numpy as np
import pytest
from instructner_client import (
    Entity,
    Extraction,
    InstructNERError,
    InvalidInputError,
    TypedEntity,
    Window,
)
from instructner_client._codec import decode_result, encode_request
from instructner_client._proto import ExtractionResult
from instructner_client._validation import make_request

TEXT = "Angela Merkel visited Paris ."


def result_tensor(message: ExtractionResult) -> np.ndarray:
    return np.array([[message.SerializeToString()]], dtype=np.object_)


def ner_result(
    *entities: tuple[str, str | None, int, int], task: str = "ner", generated: str = ""
) -> np.ndarray:
    message = ExtractionResult(task=task, generated_text=generated)
    for text, label, start, end in entities:
        item = message.entities.add()
        item.text, item.start, item.end = text, start, end
        if label is not None:
            item.label = label
    return result_tensor(message)


def tensors(request) -> dict[str, tuple[list[int], str, list[bytes]]]:
    out = {}
    for tensor in encode_request(request):
        proto = tensor._get_tensor()
        values = tensor._get_content()  # serialized BYTES: 4-byte length prefix + data per value
        items, pos = [], 0
        while pos < len(values):
            size = int.from_bytes(values[pos : pos + 4], "little")
            items.append(values[pos + 4 : pos + 4 + size])
            pos += 4 + size
        out[proto.name] = (list(proto.shape), proto.datatype, items)
    return out


def test_ner_request_sends_text_task_and_labels_as_one_row():
    sent = tensors(make_request("ner", "Zoë in Zürich", ["person", "city"]))
    assert sent == {
        "TEXT": ([1, 1], "BYTES", ["Zoë in Zürich".encode()]),
        "TASK": ([1, 1], "BYTES", [b"ner"]),
        "LABELS": ([1, 2], "BYTES", [b"person", b"city"]),
    }


def test_extract_request_sends_no_labels_or_entities():
    assert set(tensors(make_request("extract", TEXT))) == {"TEXT", "TASK"}


def test_type_request_sends_entities():
    sent = tensors(make_request("type", TEXT, ["person"], ["Angela Merkel"]))
    assert sent["ENTITIES"] == ([1, 1], "BYTES", [b"Angela Merkel"])
    assert sent["TASK"][2] == [b"type"]


def test_decoding_keeps_entities_labels_offsets_and_generated_text():
    request = make_request("ner", TEXT, ["person", "location"])
    array = ner_result(
        ("Angela Merkel", "person", 0, 13),
        ("Paris", "location", 22, 27),
        generated="Angela Merkel is a person, Paris is a location.",
    )
    assert decode_result(array, request) == Extraction(
        task="ner",
        text=TEXT,
        entities=(Entity("Angela Merkel", "person", 0, 13), Entity("Paris", "location", 22, 27)),
        generated_text="Angela Merkel is a person, Paris is a location.",
    )
    assert all(isinstance(e, TypedEntity) for e in decode_result(array, request).entities)


def test_a_typed_entity_equals_an_entity_with_the_same_fields_and_hashes_alike():
    typed = TypedEntity("Paris", "location", 22, 27, 0.5)
    assert typed == Entity("Paris", "location", 22, 27, 0.5)
    assert len({typed, Entity("Paris", "location", 22, 27, 0.5)}) == 1
    assert typed != Entity("Paris", "location", 22, 27, 0.6)
    assert typed != ("Paris", "location", 22, 27, 0.5)


def test_decoding_counts_offsets_in_characters_not_utf8_bytes():
    text = "Zoë visited Zürich ."
    request = make_request("ner", text, ["location"])
    decoded = decode_result(ner_result(("Zürich", "location", 12, 18)), request)
    assert decoded.entities == (Entity("Zürich", "location", 12, 18),)
    assert text[12:18] == "Zürich"


def test_extract_entities_have_no_label():
    request = make_request("extract", TEXT)
    array = ner_result(("Paris", None, 22, 27), task="extract", generated="Paris.")
    decoded = decode_result(array, request)
    assert decoded.entities == (Entity("Paris", None, 22, 27),)
    assert not isinstance(decoded.entities[0], TypedEntity)


def test_empty_result_decodes_to_no_entities():
    request = make_request("ner", TEXT, ["person"])
    decoded = decode_result(
        result_tensor(ExtractionResult(task="ner", generated_text="None")), request
    )
    assert decoded.entities == ()
    assert decoded.generated_text == "None"
    assert decoded.output_limit_reached is False


def test_entity_whose_offsets_miss_its_text_is_reported():
    request = make_request("ner", TEXT, ["location"])
    with pytest.raises(
        InstructNERError,
        match=r"entity 0 'Paris' at \[21, 26\), which is not that text's position "
        r"in the 29-character input",
    ):
        decode_result(ner_result(("Paris", "location", 21, 26)), request)


def test_entity_beyond_the_end_of_the_text_is_reported():
    request = make_request("ner", TEXT, ["location"])
    with pytest.raises(InstructNERError, match=r"at \[27, 40\)"):
        decode_result(ner_result(("x", "location", 27, 40)), request)


def test_label_that_was_not_sent_is_reported():
    request = make_request("ner", TEXT, ["person"])
    with pytest.raises(
        InstructNERError,
        match=r"label 'location' for entity 'Paris', "
        r"which is not one of the labels sent \(person\)",
    ):
        decode_result(ner_result(("Paris", "location", 22, 27)), request)


def test_label_on_an_extract_result_is_reported():
    request = make_request("extract", TEXT)
    with pytest.raises(
        InstructNERError, match="label 'location' for entity 'Paris' of an extract call"
    ):
        decode_result(ner_result(("Paris", "location", 22, 27), task="extract"), request)


def test_empty_label_is_not_mistaken_for_no_label():
    request = make_request("ner", TEXT, ["location"])
    with pytest.raises(InstructNERError, match="returned label '' for entity 'Paris'"):
        decode_result(ner_result(("Paris", "", 22, 27)), request)


def test_ner_entity_without_label_is_reported():
    request = make_request("ner", TEXT, ["location"])
    with pytest.raises(InstructNERError, match="returned label None for entity 'Paris'"):
        decode_result(ner_result(("Paris", None, 22, 27)), request)


def test_answer_for_another_task_is_reported():
    request = make_request("ner", TEXT, ["location"])
    with pytest.raises(
        InstructNERError, match="the server answered task 'extract' to a 'ner' request"
    ):
        decode_result(ner_result(task="extract"), request)


def test_windows_are_decoded_and_a_cut_answer_is_flagged():
    message = ExtractionResult(task="extract", generated_text="Angela Merkel.\nParis")
    for start, end, generated, cut in ((0, 14, "Angela Merkel.", False), (14, 29, "Paris", True)):
        window = message.windows.add()
        window.start, window.end, window.generated_text = start, end, generated
        window.input_tokens, window.output_tokens, window.output_limit_reached = 30, 8, cut
    decoded = decode_result(result_tensor(message), make_request("extract", TEXT))
    assert decoded.windows == (
        Window(0, 14, "Angela Merkel.", 30, 8, False),
        Window(14, 29, "Paris", 30, 8, True),
    )
    assert decoded.output_limit_reached is True


def test_missing_result_output_is_reported():
    with pytest.raises(InstructNERError, match="the server's response has no RESULT output"):
        decode_result(None, make_request("extract", TEXT))


def test_result_with_two_values_is_reported_not_truncated():
    raw = ExtractionResult(task="extract").SerializeToString()
    with pytest.raises(
        InstructNERError, match=r"RESULT output has shape \[1, 2\], expected one value"
    ):
        decode_result(np.array([[raw, raw]], dtype=np.object_), make_request("extract", TEXT))


def test_result_that_is_not_a_protobuf_is_reported():
    with pytest.raises(InstructNERError, match="RESULT output is not an ExtractionResult"):
        decode_result(
            np.array([[b"\xff\xff\xff"]], dtype=np.object_), make_request("extract", TEXT)
        )


def scored_result(score: float | None) -> np.ndarray:
    message = ExtractionResult(task="ner", generated_text="Paris is a location.")
    entity = message.entities.add(text="Paris", label="location", start=22, end=27)
    if score is not None:
        entity.score = score
    return result_tensor(message)


def test_decoding_keeps_the_entity_score_and_none_when_the_server_sent_none():
    request = make_request("ner", TEXT, ["location"])
    (scored,) = decode_result(scored_result(0.5), request).entities
    assert scored.score == 0.5
    assert scored.to_dict()["score"] == 0.5
    (unscored,) = decode_result(scored_result(None), request).entities
    assert unscored.score is None


def test_a_score_outside_zero_one_is_reported_as_a_server_error():
    request = make_request("ner", TEXT, ["location"])
    with pytest.raises(InstructNERError, match=r"score 1.5 for entity 'Paris', outside \[0, 1\]"):
        decode_result(scored_result(1.5), request)


def test_min_score_travels_as_fp32_and_only_when_set():
    names = [t.name() for t in encode_request(make_request("ner", TEXT, ["location"]))]
    assert "MIN_SCORE" not in names
    inputs = encode_request(make_request("ner", TEXT, ["location"], min_score=0.9))
    (minimum,) = [t for t in inputs if t.name() == "MIN_SCORE"]
    assert (minimum.datatype(), minimum.shape()) == ("FP32", [1, 1])
    assert np.frombuffer(minimum._get_content(), dtype=np.float32).tolist() == [pytest.approx(0.9)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "min_score must be a number in [0, 1], got 1.5"),
        (-0.5, "min_score must be a number in [0, 1], got -0.5"),
        (float("nan"), "min_score must be a number in [0, 1], got nan"),
        ("0.5", "min_score must be a number, got str"),
        (True, "min_score must be a number, got bool"),
    ],
)
def test_a_bad_min_score_is_refused_before_sending(value, message):
    with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$"):
        make_request("ner", TEXT, ["location"], min_score=value)
