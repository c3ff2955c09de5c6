import numpy as np
import pytest

from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits
from instructner.serving.requests import (
    ExtractionRequest,
    requests_from_inputs,
    validate_request,
)

LABELS = ("person", "location")
TEXT = "Peter Blackburn visited Brussels ."


def error_of(**kwargs) -> str:
    with pytest.raises(RequestError) as info:
        validate_request(**kwargs)
    return str(info.value)


def test_validate_request_defaults_to_ner_task():
    assert validate_request(TEXT, None, LABELS) == ExtractionRequest(TEXT, "ner", LABELS, ())


def test_validate_request_rejects_unknown_task_naming_the_choices():
    message = error_of(text=TEXT, task="summarize", labels=LABELS)
    assert message == "TASK: expected one of ner, extract, type, got 'summarize'"


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_validate_request_rejects_blank_text(text):
    assert error_of(text=text, labels=LABELS) == (
        "TEXT: must contain at least one non-whitespace character"
    )


def test_validate_request_rejects_text_over_the_limit_stating_the_limit():
    message = error_of(text="a" * 11, labels=LABELS, limits=Limits(max_text_chars=10))
    assert message.startswith("TEXT: is 11 characters long, over the limit of 10")


def test_validate_request_accepts_text_exactly_at_the_limit():
    assert validate_request("a" * 10, "extract", limits=Limits(max_text_chars=10)).text == "a" * 10


@pytest.mark.parametrize("task", ["ner", "type"])
def test_validate_request_requires_labels_for_tasks_with_options(task):
    message = error_of(text=TEXT, task=task, entities=("Brussels",) if task == "type" else ())
    assert message.startswith(f"LABELS: required for task '{task}'")


def test_validate_request_rejects_labels_for_extraction_instead_of_ignoring_them():
    assert error_of(text=TEXT, task="extract", labels=LABELS) == (
        "LABELS: is not used by task 'extract'; leave it out"
    )


def test_validate_request_rejects_entities_outside_the_typing_task():
    assert error_of(text=TEXT, task="ner", labels=LABELS, entities=("Brussels",)) == (
        "ENTITIES: is not used by task 'ner'; leave it out"
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (("person", " "), "LABELS: LABELS[1] is empty"),
        (("person", "a, b"), "LABELS: LABELS[1] 'a, b' contains a comma"),
        (("person", "Person"), "LABELS: LABELS[1] 'Person' repeats LABELS[0]"),
        (
            ("café", "cafe\u0301"),
            "LABELS: LABELS[1] 'cafe\u0301' repeats LABELS[0] (labels are "
            "compared after NFKC normalization, ignoring case)",
        ),
        (("person", "ｐｅｒｓｏｎ"), "LABELS: LABELS[1] 'ｐｅｒｓｏｎ' repeats LABELS[0]"),
        (
            ("Ｏｐｔｉｏｎｓ： x",),
            "LABELS: LABELS[0] 'Ｏｐｔｉｏｎｓ： x' contains 'Options:', a section",
        ),
        (("Ⓞptions: x",), "LABELS: LABELS[0] 'Ⓞptions: x' contains 'Options:', a section marker"),
        (("ＳＥＮＴＥＮＣＥ:",), "LABELS: LABELS[0] 'ＳＥＮＴＥＮＣＥ:' contains 'Sentence:'"),
        (("x" * 65,), "LABELS: LABELS[0] is 65 characters long, over the limit of 64"),
    ],
)
def test_validate_request_names_the_bad_label(labels, expected):
    assert error_of(text=TEXT, labels=labels).startswith(expected)


def test_validate_request_limits_the_number_of_labels():
    message = error_of(text=TEXT, labels=("a", "b", "c"), limits=Limits(max_labels=2))
    assert message == "LABELS: has 3 entries, over the limit of 2"


def test_validate_request_requires_entities_for_typing():
    assert error_of(text=TEXT, task="type", labels=LABELS).startswith(
        "ENTITIES: required for task 'type'"
    )


@pytest.mark.parametrize(
    ("entities", "expected"),
    [
        (("Paris",), "ENTITIES: ENTITIES[0] 'Paris' does not occur in TEXT"),
        (("Brussel",), "ENTITIES: ENTITIES[0] 'Brussel' does not occur in TEXT"),
        (("Brussels", "Brussels"), "ENTITIES: ENTITIES[1] 'Brussels' repeats ENTITIES[0]"),
        ((" Brussels",), "ENTITIES: ENTITIES[0] ' Brussels' starts or ends with whitespace"),
        (("",), "ENTITIES: ENTITIES[0] is empty"),
    ],
)
def test_validate_request_names_the_bad_entity(entities, expected):
    assert error_of(text=TEXT, task="type", labels=LABELS, entities=entities).startswith(expected)


def test_requests_from_inputs_reads_every_row():
    arrays = {
        "TEXT": np.array([[TEXT.encode()], [b"EU says no ."]], dtype=np.object_),
        "LABELS": np.array([[b"person", b"location"]] * 2, dtype=np.object_),
    }
    requests = requests_from_inputs(arrays.get)
    assert [r.text for r in requests] == [TEXT, "EU says no ."]
    assert all(r.labels == LABELS and r.task == "ner" for r in requests)


def test_requests_from_inputs_rejects_invalid_utf8_naming_the_byte():
    arrays = {
        "TEXT": np.array([[b"EU \xff says"]], dtype=np.object_),
        "LABELS": np.array([[b"x"]], dtype=np.object_),
    }
    with pytest.raises(
        RequestError, match=r"^TEXT: row 0 is not valid UTF-8 \(invalid start byte at byte 3\)"
    ):
        requests_from_inputs(arrays.get)


def test_requests_from_inputs_requires_text():
    with pytest.raises(RequestError, match="^TEXT: is required"):
        requests_from_inputs({}.get)


def test_requests_from_inputs_rejects_text_with_two_columns():
    arrays = {"TEXT": np.array([[b"a", b"b"]], dtype=np.object_)}
    with pytest.raises(RequestError, match=r"^TEXT: expected shape \[batch, 1\].*got \[1, 2\]"):
        requests_from_inputs(arrays.get)


def test_requests_from_inputs_rejects_labels_with_another_batch_size():
    arrays = {
        "TEXT": np.array([[b"a"], [b"b"]], dtype=np.object_),
        "LABELS": np.array([[b"x"]], dtype=np.object_),
    }
    with pytest.raises(RequestError, match="^LABELS: has batch size 1, but TEXT has 2"):
        requests_from_inputs(arrays.get)


def test_requests_from_inputs_reads_task_and_entities():
    arrays = {
        "TEXT": np.array([[TEXT.encode()]], dtype=np.object_),
        "TASK": np.array([[b"type"]], dtype=np.object_),
        "LABELS": np.array([[b"location"]], dtype=np.object_),
        "ENTITIES": np.array([[b"Brussels"]], dtype=np.object_),
    }
    (request,) = requests_from_inputs(arrays.get)
    assert request == ExtractionRequest(TEXT, "type", ("location",), ("Brussels",))
