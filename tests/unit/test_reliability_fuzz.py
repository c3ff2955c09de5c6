"""Property-based fuzzing of the serving core's preprocessing and postprocessing.

Whatever arrives (arbitrary strings and bytes, control characters, prompt markers, answers the
model should never write), validation raises only :class:`RequestError`, accepted requests
obey the documented policy, windows lose no word, and every served entity's offsets point at
its text in the document with a label the caller gave.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instructner.method.prompts import TASKS
from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits
from instructner.serving.pipeline import Pipeline
from instructner.serving.requests import PROMPT_MARKERS, requests_from_inputs, validate_request
from instructner.serving.results import merge_windows, window_result
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.window_steps import plan_request, postprocess, preprocess
from tests.harness import GazetteerEngine

LIMITS = Limits(max_text_chars=600, max_input_tokens=64, max_output_tokens=24)
LABELS = ("person", "location", "organization")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW_FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of hostile and ordinary text: entities the gazetteer knows, prompt markers, control and
# layout characters, non-Latin script, punctuation that ends sentences, and plain words.
PIECES = st.sampled_from(
    [
        "EU",
        "Brussels",
        "Peter Blackburn",
        "Options:",
        "Instruction:",
        "Sentence:",
        " is a ",
        ", ",
        ".",
        " . ",
        "!",
        "?",
        "\n",
        "\t",
        "\r\n",
        "\x00",
        "\x1b",
        "  ",
        "Ünïcödé",
        "東京",
        "😀",
        "Mr.",
        "U.S.",
        "word",
        "the",
        "None",
        "(",
        ")",
        '"',
    ]
)
DOCUMENTS = st.lists(PIECES, min_size=1, max_size=60).map(" ".join)
WORDS = st.text(min_size=0, max_size=30)


@pytest.fixture(scope="module")
def tokenizer() -> PromptTokenizer:
    return PromptTokenizer()


def _has_control(text: str, allowed: str = "") -> bool:
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text if c not in allowed)


@FUZZ
@given(
    text=st.one_of(st.text(max_size=200), DOCUMENTS),
    task=st.one_of(st.none(), st.sampled_from(TASKS), st.text(max_size=10)),
    labels=st.lists(st.one_of(WORDS, st.sampled_from(LABELS + PROMPT_MARKERS)), max_size=8),
    entities=st.lists(st.one_of(WORDS, st.sampled_from(["EU", "Brussels"])), max_size=4),
)
def test_validation_raises_only_request_errors_and_accepts_only_policy_conforming_requests(
    text, task, labels, entities
):
    try:
        request = validate_request(text, task, labels, entities, LIMITS)
    except RequestError as error:
        assert error.input_name in {"TEXT", "TASK", "LABELS", "ENTITIES"}
        assert str(error).startswith(f"{error.input_name}: ")
        return
    assert request.text.strip() and len(request.text) <= LIMITS.max_text_chars
    assert not _has_control(request.text, "\t\n\r")
    for word in request.labels + request.entities:
        assert word.strip() and not _has_control(word)
        assert not any(m.casefold() in word.casefold() for m in PROMPT_MARKERS)
    for entity in request.entities:
        assert entity in request.text


@FUZZ
@given(
    rows=st.lists(st.binary(max_size=40), min_size=1, max_size=3),
    labels=st.lists(st.binary(max_size=12), min_size=1, max_size=4),
    task=st.one_of(st.none(), st.binary(max_size=8)),
)
def test_request_tensors_of_arbitrary_bytes_give_requests_or_request_errors(rows, labels, task):
    arrays = {
        "TEXT": np.array([[r] for r in rows], dtype=np.object_),
        "LABELS": np.array([labels] * len(rows), dtype=np.object_),
    }
    if task is not None:
        arrays["TASK"] = np.array([[task]] * len(rows), dtype=np.object_)
    try:
        requests = requests_from_inputs(arrays.get, LIMITS)
    except RequestError:
        return
    assert [r.text.encode("utf-8") for r in requests] == rows


@SLOW_FUZZ
@given(text=DOCUMENTS, task=st.sampled_from(TASKS))
def test_pipeline_loses_no_word_and_serves_exact_offsets_for_any_document(tokenizer, text, task):
    pipeline = Pipeline(GazetteerEngine(tokenizer), tokenizer, LIMITS)
    labels = () if task == "extract" else LABELS
    entities = tuple(e for e in ("EU", "Brussels") if e in text.split()) if task == "type" else ()
    try:
        result = pipeline.run(text, task, labels, entities)
    except RequestError as error:
        assert error.input_name in {"TEXT", "LABELS", "ENTITIES"}
        return
    for entity in result.entities:
        assert text[entity.start : entity.end] == entity.text
        if task == "extract":
            assert not entity.HasField("label")
        else:
            assert entity.label in LABELS
    windows = list(result.windows)
    assert all(a.end <= b.start for a, b in zip(windows, windows[1:], strict=False))
    assert all(w.input_tokens <= LIMITS.max_input_tokens for w in windows)
    if task != "type":  # typing skips sentences that hold none of the given entities
        covered = [word for w in windows for word in text[w.start : w.end].split()]
        assert covered == text.split(), "a word of the document was left out or cut"


@FUZZ
@given(
    text=DOCUMENTS,
    answers=st.lists(
        st.one_of(
            st.text(max_size=60),
            st.lists(st.one_of(PIECES, st.sampled_from(LABELS)), max_size=12).map(" ".join),
        ),
        min_size=1,
        max_size=8,
    ),
    task=st.sampled_from(TASKS),
)
def test_any_model_answer_becomes_entities_at_exact_document_offsets(
    tokenizer, text, answers, task
):
    labels = () if task == "extract" else LABELS
    entities = ("EU",) if task == "type" and "EU" in text.split() else ()
    if task == "type" and not entities:
        return
    try:
        request = validate_request(text, task, labels, entities, LIMITS)
        windows = plan_request(request, tokenizer, LIMITS)
    except RequestError:
        return
    parts = []
    for index, window in enumerate(windows):
        answer = answers[index % len(answers)]
        part = window_result(task, window.text, answer, labels, window.entities)
        parts.append((window.start, part))
    merged = merge_windows(task, text, parts)
    for entity in merged.entities:
        assert text[entity.start : entity.end] == entity.text
        assert (entity.label in labels) if labels else not entity.HasField("label")
        if task == "type":
            assert entity.text in entities


@FUZZ
@given(ids=st.lists(st.integers(min_value=0, max_value=32_127), max_size=30))
def test_postprocessing_of_arbitrary_token_ids_never_invents_spans(tokenizer, ids):
    text = "EU officials met Peter Blackburn in Brussels ."
    request, _ = preprocess(tokenizer, LIMITS, text, "ner", LABELS)
    result = postprocess(tokenizer, request, ids, 10, LIMITS.max_output_tokens)
    for entity in result.entities:
        assert text[entity.start : entity.end] == entity.text
        assert entity.label in LABELS
    assert result.windows[0].output_tokens == len(ids)
    assert result.windows[0].output_limit_reached == (len(ids) >= LIMITS.max_output_tokens)
