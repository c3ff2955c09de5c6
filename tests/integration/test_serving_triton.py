"""The served pipeline against a real tritonserver, with a fixture model of known answers.

The fixture T5 answers every NER prompt with "EU is an organization, Brussels is a location.",
every extraction prompt with "EU, Brussels." and every typing prompt with "Brussels is a
location." (tests.harness), so entities and offsets have exact expected values.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from instructner.serving.engine import TransformersEngine
from instructner.serving.pipeline import Pipeline
from instructner.serving.protos import ExtractionResult
from instructner.serving.tokenizer import PromptTokenizer, encode_window
from tests.harness import (
    FIXED_ANSWERS,
    FIXTURE_LABELS,
    TEST_LIMITS,
    bytes_input,
    ner_inputs,
    result_to_dict,
)

pytestmark = pytest.mark.integration

MODEL = "instruction_ner"
SHORT = "EU officials met in Brussels on Monday ."
SENTENCES = (
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn visited Brussels on Monday .",
    "Nothing here names either of them .",
    "The EU summit in Brussels ended late on Friday .",
)
_FILLER = "the farmers of the region discussed prices and the weather with traders".split()
# Over the test limit of 128 prompt tokens: instruction_ner must cut it into word windows.
LONG_SENTENCE = " ".join(
    ["Then"]
    + [_FILLER[i % len(_FILLER)] for i in range(60)]
    + ["EU"]
    + [_FILLER[i % len(_FILLER)] for i in range(60)]
    + ["."]
)
DOCUMENT = f"{SENTENCES[0]} {SENTENCES[1]}\n{SENTENCES[2]}  {LONG_SENTENCE} {SENTENCES[3]}"


def infer(client: grpcclient.InferenceServerClient, inputs: list) -> tuple[ExtractionResult, str]:
    response = client.infer(MODEL, inputs, client_timeout=120)
    result = ExtractionResult.FromString(response.as_numpy("RESULT")[0, 0])
    return result, response.as_numpy("GENERATED_TEXT")[0, 0].decode("utf-8")


def spans(result: ExtractionResult) -> list[tuple[str, str | None, int, int]]:
    return [
        (e.text, e.label if e.HasField("label") else None, e.start, e.end) for e in result.entities
    ]


def test_ner_returns_labelled_entities_with_offsets_into_text(client):
    result, generated = infer(client, ner_inputs(SHORT, FIXTURE_LABELS))

    assert generated == FIXED_ANSWERS["ner"] == result.generated_text
    assert result.task == "ner"
    assert spans(result) == [("EU", "organization", 0, 2), ("Brussels", "location", 20, 28)]
    assert [(w.start, w.end) for w in result.windows] == [(0, len(SHORT))]
    assert not result.windows[0].output_limit_reached


def test_ner_is_the_default_task_when_task_is_absent(client):
    with_task, _ = infer(client, ner_inputs(SHORT, FIXTURE_LABELS, task="ner"))
    without, _ = infer(client, ner_inputs(SHORT, FIXTURE_LABELS))

    assert with_task == without


def test_extract_returns_spans_without_labels(client):
    result, generated = infer(client, ner_inputs(SHORT, task="extract"))

    assert generated == FIXED_ANSWERS["extract"]
    assert spans(result) == [("EU", None, 0, 2), ("Brussels", None, 20, 28)]


def test_type_labels_only_the_given_entities(client):
    result, generated = infer(
        client, ner_inputs(SHORT, FIXTURE_LABELS, task="type", entities=["Brussels"])
    )

    assert generated == FIXED_ANSWERS["type"]
    assert spans(result) == [("Brussels", "location", 20, 28)]


def test_unicode_text_offsets_count_code_points(client):
    text = "Ünïcödé délégués of the EU met in Brussels ."
    result, _ = infer(client, ner_inputs(text, FIXTURE_LABELS))

    assert [text[e.start : e.end] for e in result.entities] == ["EU", "Brussels"]


def test_long_document_is_split_into_windows_with_offsets_into_the_document(client):
    result, generated = infer(client, ner_inputs(DOCUMENT, FIXTURE_LABELS))

    for entity in result.entities:
        assert DOCUMENT[entity.start : entity.end] == entity.text
    long_start = DOCUMENT.index(LONG_SENTENCE)
    long_end = long_start + len(LONG_SENTENCE)
    expected = []
    for sentence in (SENTENCES[0], SENTENCES[1], LONG_SENTENCE, SENTENCES[3]):
        base = DOCUMENT.index(sentence)
        for word, label in (("EU", "organization"), ("Brussels", "location")):
            if f" {word} " in f" {sentence} ":
                start = base + f" {sentence} ".index(f" {word} ")
                expected.append((word, label, start, start + len(word)))
    assert spans(result) == sorted(expected, key=lambda s: s[2])

    windows = [(w.start, w.end) for w in result.windows]
    sentence_windows = [w for w in windows if not long_start <= w[0] < long_end]
    assert sentence_windows == [(DOCUMENT.index(s), DOCUMENT.index(s) + len(s)) for s in SENTENCES]
    long_windows = [w for w in result.windows if long_start <= w.start < long_end]
    assert len(long_windows) >= 2, "the over-long sentence must be cut into word windows"
    assert long_windows[0].start == long_start and long_windows[-1].end == long_end
    assert all(w.input_tokens <= TEST_LIMITS.max_input_tokens for w in result.windows)
    assert generated.split("\n") == [w.generated_text for w in result.windows]


def test_batch_of_rows_in_one_request_returns_one_result_per_row(client):
    texts = [SHORT, "Nothing about Brussels here ."]
    inputs = [
        bytes_input("TEXT", [[t.encode()] for t in texts]),
        bytes_input("LABELS", [[label.encode() for label in FIXTURE_LABELS]] * 2),
    ]
    response = client.infer(MODEL, inputs, client_timeout=120)
    results = [ExtractionResult.FromString(b) for b in response.as_numpy("RESULT")[:, 0]]

    assert [[e.text for e in r.entities] for r in results] == [["EU", "Brussels"], ["Brussels"]]


def _wrong_shape_inputs() -> list:
    text = grpcclient.InferInput("TEXT", [1, 2], "BYTES")
    text.set_data_from_numpy(np.array([[b"EU", b"Brussels"]], dtype=np.object_))
    return [text, bytes_input("LABELS", [[b"organization"]])]


MIXED_REQUESTS = {
    "valid ner": (ner_inputs(SHORT, FIXTURE_LABELS), None),
    "valid extract": (ner_inputs(SHORT, task="extract"), None),
    "valid type": (ner_inputs(SHORT, FIXTURE_LABELS, "type", ["Brussels"]), None),
    "empty text": (ner_inputs("  \n ", FIXTURE_LABELS), "TEXT: must contain at least one"),
    "no labels": (ner_inputs(SHORT), "LABELS: required for task 'ner'"),
    "not utf-8": (
        ner_inputs(b"EU \xff\xfe met", FIXTURE_LABELS),
        "TEXT: row 0 is not valid UTF-8",
    ),
    "over limit": (
        ner_inputs("EU " * 1667, FIXTURE_LABELS),
        "TEXT: is 5001 characters long, over the limit of 5000",
    ),
    "unknown task": (
        ner_inputs(SHORT, FIXTURE_LABELS, task="summarize"),
        "TASK: expected one of ner, extract, type, got 'summarize'",
    ),
    "labels for extract": (
        ner_inputs(SHORT, FIXTURE_LABELS, task="extract"),
        "LABELS: is not used by task 'extract'",
    ),
    "entity not in text": (
        ner_inputs(SHORT, FIXTURE_LABELS, task="type", entities=["Paris"]),
        "ENTITIES: ENTITIES[0] 'Paris' does not occur in TEXT",
    ),
    "wrong shape": (_wrong_shape_inputs(), "TEXT"),
}


def test_mixed_concurrent_requests_fail_alone_with_invalid_argument(client):
    outcomes: dict[str, tuple[object, InferenceServerException | None]] = {}
    done = threading.Event()
    lock = threading.Lock()

    def callback(name, result, error):
        with lock:
            outcomes[name] = (result, error)
            if len(outcomes) == len(MIXED_REQUESTS):
                done.set()

    for name, (inputs, _) in MIXED_REQUESTS.items():
        client.async_infer(
            MODEL,
            inputs,
            callback=lambda result, error, n=name: callback(n, result, error),
            client_timeout=120,
        )
    assert done.wait(180), f"only {sorted(outcomes)} answered"

    for name, (_, expected_error) in MIXED_REQUESTS.items():
        result, error = outcomes[name]
        if expected_error is None:
            assert error is None, f"{name}: {error}"
            parsed = ExtractionResult.FromString(result.as_numpy("RESULT")[0, 0])
            assert parsed.entities, name
        else:
            assert error is not None, f"{name} should have failed"
            assert error.status() == "StatusCode.INVALID_ARGUMENT", f"{name}: {error}"
            assert expected_error in error.message(), f"{name}: {error.message()}"


def test_served_results_equal_the_in_process_reference_pipeline(client, checkpoint: Path):
    reference = Pipeline(TransformersEngine(checkpoint), PromptTokenizer(checkpoint), TEST_LIMITS)
    cases = [
        (SHORT, "ner", FIXTURE_LABELS, ()),
        (DOCUMENT, "ner", FIXTURE_LABELS, ()),
        (DOCUMENT, "extract", (), ()),
        (DOCUMENT, "type", FIXTURE_LABELS, ("Brussels", "EU")),
    ]
    for text, task, labels, entities in cases:
        served, _ = infer(client, ner_inputs(text, labels or None, task, list(entities) or None))
        expected = reference.run(text, task, labels, entities)
        assert rounded_scores(result_to_dict(served)) == rounded_scores(result_to_dict(expected)), (
            task
        )


def rounded_scores(result: dict) -> dict:
    """The result with entity scores to 4 places (engines differ in float rounding)."""
    for entity in result["entities"]:
        assert entity["score"] is not None and 0.0 <= entity["score"] <= 1.0, entity
        entity["score"] = round(entity["score"], 4)
    return result


def score_inputs(min_score: float | None = None, scores: bool | None = None) -> list:
    inputs = ner_inputs(SHORT, FIXTURE_LABELS)
    if min_score is not None:
        tensor = grpcclient.InferInput("MIN_SCORE", [1, 1], "FP32")
        tensor.set_data_from_numpy(np.array([[min_score]], dtype=np.float32))
        inputs.append(tensor)
    if scores is not None:
        tensor = grpcclient.InferInput("RETURN_SCORES", [1, 1], "BOOL")
        tensor.set_data_from_numpy(np.array([[scores]], dtype=np.bool_))
        inputs.append(tensor)
    return inputs


def test_every_served_entity_has_a_score_and_min_score_keeps_the_rest_in_order(client):
    result, _ = infer(client, score_inputs())
    scores = [e.score for e in result.entities]
    assert len(scores) == 2 and all(e.HasField("score") for e in result.entities)
    assert all(0.0 < s <= 1.0 for s in scores)
    kept, _ = infer(client, score_inputs(min_score=min(scores)))
    assert spans(kept) == spans(result)  # at the lowest score: everything, same order
    above, _ = infer(
        client, score_inputs(min_score=float(np.nextafter(np.float32(max(scores)), np.float32(2))))
    )
    assert spans(above) == []


def test_scores_can_be_turned_off(client):
    result, _ = infer(client, score_inputs(scores=False))
    assert spans(result) == [("EU", "organization", 0, 2), ("Brussels", "location", 20, 28)]
    assert not any(e.HasField("score") for e in result.entities)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_score": 1.5}, "MIN_SCORE: row 0 is 1.5, expected a number in [0, 1]"),
        ({"min_score": 0.5, "scores": False}, "MIN_SCORE: row 0 is 0.5 but RETURN_SCORES"),
    ],
)
def test_bad_score_options_get_invalid_argument(client, options, message):
    with pytest.raises(InferenceServerException) as info:
        infer(client, score_inputs(**options))
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert message in info.value.message()


def _engine_answers(
    client, model: str, prompts: list[list[int]], max_new: int, internal: dict[str, str]
) -> list[list[int]]:
    answers = []
    for ids in prompts:
        arrays = {
            "input_ids": np.array([ids], dtype=np.int32),
            "input_lengths": np.array([[len(ids)]], dtype=np.int32),
            "request_output_len": np.array([[max_new]], dtype=np.int32),
        }
        inputs = []
        for name, array in arrays.items():
            tensor = grpcclient.InferInput(name, list(array.shape), "INT32")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        response = client.infer(model, inputs, client_timeout=120, parameters=internal)
        length = int(response.as_numpy("sequence_length")[0, 0])
        answers.append([int(t) for t in response.as_numpy("output_ids")[0, 0, :length]])
    return answers


def test_engine_models_agree_with_the_in_process_reference(
    client, checkpoint: Path, record_property, internal
):
    tokenizer = PromptTokenizer(checkpoint)
    texts = [SHORT, *SENTENCES, "Japan began the defence of their Asian Cup title ."]
    prompts = [
        encode_window(tokenizer, "ner", t, FIXTURE_LABELS, (), TEST_LIMITS.max_input_tokens)
        for t in texts
    ] + [encode_window(tokenizer, "extract", t, (), (), 128) for t in texts]
    max_new = TEST_LIMITS.max_output_tokens
    reference = TransformersEngine(checkpoint).generate(
        prompts, [max_new] * len(prompts), tokenizer.eos_token_id
    )
    expected = [g.token_ids for g in reference]

    assert _engine_answers(client, "engine_reference", prompts, max_new, internal) == expected
    assert _engine_answers(client, "engine", prompts, max_new, internal) == expected
    constrained = TransformersEngine(checkpoint, constrained=True).generate(
        prompts, [max_new] * len(prompts), tokenizer.eos_token_id
    )
    assert _engine_answers(client, "engine_constrained", prompts, max_new, internal) == [
        g.token_ids for g in constrained
    ]
    int8 = _engine_answers(client, "engine_int8", prompts, max_new, internal)
    agreement = sum(a == b for a, b in zip(int8, expected, strict=True)) / len(expected)
    record_property("int8_answer_agreement", agreement)
    assert agreement >= 0.9, f"int8 answers agree with the reference on {agreement:.0%} only"


def test_engine_rejects_beam_search_and_out_of_range_tokens(client, internal):
    def call(arrays):
        inputs = []
        for name, array in arrays.items():
            tensor = grpcclient.InferInput(name, list(array.shape), "INT32")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        with pytest.raises(InferenceServerException) as info:
            client.infer("engine", inputs, client_timeout=60, parameters=internal)
        return info.value

    base = {
        "input_ids": np.array([[5, 6, 1]], dtype=np.int32),
        "input_lengths": np.array([[3]], dtype=np.int32),
        "request_output_len": np.array([[8]], dtype=np.int32),
    }
    beams = call({**base, "beam_width": np.array([[4]], dtype=np.int32)})
    assert beams.status() == "StatusCode.INVALID_ARGUMENT"
    assert "beam_width: only greedy decoding (1) is served" in beams.message()
    bad = call({**base, "input_ids": np.array([[5, 999999, 1]], dtype=np.int32)})
    assert "input_ids: row 0 holds a token id outside 0..32127" in bad.message()
