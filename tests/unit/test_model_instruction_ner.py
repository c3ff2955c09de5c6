import asyncio
import re

import fake_pb_utils as pb
import numpy as np
import pytest
from serving_models import LABELS, gazetteer_patch, model_values, route_pipeline

from instructner.serving.engine_contract import ENGINE_PARAMETERS
from instructner.serving.protos import ExtractionResult


def load_bls(steps, routed=None, **overrides):
    """instruction_ner with ``steps``; returns it and the gazetteer engines that answer it.

    ``embedded`` loads its own engine (the engine model's parameters); ``inline`` calls the
    engine model, routed (``routed``: the engines of :func:`route_pipeline`) to a gazetteer.
    """
    values = {**model_values("instruction_ner"), "steps": steps, **overrides}
    if steps != "embedded":
        return pb.load_model("instruction_ner", values), routed
    patch, embedded = gazetteer_patch()
    engine = model_values("engine")
    values.update({f"embedded_{k}": engine[k] for k in ENGINE_PARAMETERS})
    values["embedded_inter_threads"] = 1
    return pb.load_model("instruction_ner", values, patch), embedded


@pytest.fixture(scope="module")
def routed():
    """One routing of the step models for the module (every call-based BLS shares it)."""
    return route_pipeline()


@pytest.fixture(scope="module", params=["embedded", "inline"])
def bls(request, routed):
    """instruction_ner in both step places; every test must hold for each."""
    return load_bls(request.param, routed)


@pytest.fixture(scope="module", params=["inline"])
def bls_calls(request, routed):
    """instruction_ner calling the engine model once per window."""
    return load_bls(request.param, routed)


@pytest.fixture
def embedded():
    """instruction_ner with the engine embedded, engine batches of at most 8 windows."""
    return load_bls("embedded", engine_batch="8")


def run(model, *requests):
    """Call execute as the stub does: a returned coroutine is run to its result."""
    returned = model.execute(list(requests))
    return asyncio.run(returned) if asyncio.iscoroutine(returned) else returned


def result_of(response):
    return ExtractionResult.FromString(pb.outputs(response)["RESULT"][0, 0])


def test_instruction_ner_merges_windows_with_offsets_into_the_document(bls):
    model, _ = bls
    doc = "Peter Blackburn flew in .\nThen the EU met in Brussels .  " + " ".join(
        ["Words"] + ["word"] * 89 + ["EU", "."]
    )
    (response,) = run(model, pb.request(TEXT=pb.strings([doc]), LABELS=pb.strings(list(LABELS))))
    result = result_of(response)
    assert [(e.text, e.label) for e in result.entities] == [
        ("Peter Blackburn", "person"),
        ("EU", "organization"),
        ("Brussels", "location"),
        ("EU", "organization"),
    ]
    assert all(doc[e.start : e.end] == e.text for e in result.entities)
    assert len(result.windows) >= 4  # two sentences, and the long one in word windows
    generated = pb.outputs(response)["GENERATED_TEXT"][0, 0].decode()
    assert generated.split("\n") == [w.generated_text for w in result.windows]


def test_instruction_ner_runs_the_three_tasks(bls):
    model, _ = bls
    text = pb.strings(["The EU met in Brussels ."])
    labels = pb.strings(list(LABELS))
    ner, extract, typed = run(
        model,
        pb.request(TEXT=text, LABELS=labels, TASK=pb.strings(["ner"])),
        pb.request(TEXT=text, TASK=pb.strings(["extract"])),
        pb.request(
            TEXT=text, LABELS=labels, TASK=pb.strings(["type"]), ENTITIES=pb.strings(["EU"])
        ),
    )
    assert [(e.text, e.label) for e in result_of(ner).entities] == [
        ("EU", "organization"),
        ("Brussels", "location"),
    ]
    assert [(e.text, e.HasField("label")) for e in result_of(extract).entities] == [
        ("EU", False),
        ("Brussels", False),
    ]
    assert [(e.text, e.label) for e in result_of(typed).entities] == [("EU", "organization")]


def test_instruction_ner_answers_bad_requests_alone_in_a_batch(bls):
    model, _ = bls
    good = pb.request(TEXT=pb.strings(["EU ."]), LABELS=pb.strings(list(LABELS)))
    responses = run(
        model,
        good,
        pb.request(TEXT=pb.strings(["x" * 2001]), LABELS=pb.strings(list(LABELS))),
        pb.request(TEXT=pb.strings(["EU ."])),
        pb.request(
            TEXT=pb.strings(["EU ."]), TASK=pb.strings(["extract"]), LABELS=pb.strings(["x"])
        ),
        good,
    )
    assert [r.has_error() for r in responses] == [False, True, True, True, False]
    assert {r.error().code() for r in responses if r.has_error()} == {pb.TritonError.INVALID_ARG}
    assert (
        responses[1]
        .error()
        .message()
        .startswith("TEXT: is 2001 characters long, over the limit of 2000")
    )
    assert responses[2].error().message().startswith("LABELS: required for task 'ner'")
    assert responses[3].error().message().startswith("LABELS: is not used by task 'extract'")


def _run_with_engine(model, route):
    """Answer one short request while the engine model answers through ``route``."""
    engine = pb.ROUTES["engine"]
    pb.ROUTES["engine"] = route
    pb.LOG.clear()
    try:
        (response,) = run(
            model, pb.request(TEXT=pb.strings(["EU ."]), LABELS=pb.strings(list(LABELS)))
        )
    finally:
        pb.ROUTES["engine"] = engine
    return response


def test_instruction_ner_reports_a_failing_step_as_internal_and_logs_it(bls_calls):
    model, _ = bls_calls
    response = _run_with_engine(
        model, lambda request: pb.InferenceResponse([], pb.TritonError("engine down"))
    )
    assert response.error().code() == pb.TritonError.INTERNAL
    assert response.error().message() == (
        "internal error in model instruction_ner (StepFailed); see the server log"
    )
    assert "model engine failed on window 0-4: engine down" in pb.LOG[-1][1]


def test_instruction_ner_reports_an_engine_answer_out_of_contract_as_internal(bls_calls):
    model, _ = bls_calls
    engine = pb.ROUTES["engine"]

    def too_long(request):  # sequence_length over the width of output_ids
        response = engine(request)
        tensors = {**pb.outputs(response), "sequence_length": np.array([[999]], dtype=np.int32)}
        return pb.InferenceResponse([pb.Tensor(k, v) for k, v in tensors.items()])

    response = _run_with_engine(model, too_long)
    assert response.error().code() == pb.TritonError.INTERNAL
    assert response.error().message() == (
        "internal error in model instruction_ner (StepFailed); see the server log"
    )
    assert "window 0-4" in pb.LOG[-1][1]
    assert "SEQUENCE_LENGTH: row 0 is 999" in pb.LOG[-1][1]


def _sentences(count):
    return " ".join(f"Sentence {i} names the EU ." for i in range(count))


def test_instruction_ner_stops_a_cancelled_document_before_its_next_window(bls_calls):
    model, engines = bls_calls
    before = sum(engines[0].batches)
    request = pb.request(TEXT=pb.strings([_sentences(30)]), LABELS=pb.strings(list(LABELS)))
    request.cancel_after_checks = 4  # asked as each window after the first starts: 5 started
    (response,) = run(model, request)
    assert response.error().code() == pb.TritonError.CANCELLED
    assert response.error().message() == (
        "request cancelled by the caller after 5 of 30 windows; the rest were not run"
    )
    assert sum(engines[0].batches) - before == 5


def test_instruction_ner_keeps_at_most_max_windows_in_flight_per_document(bls_calls, monkeypatch):
    model, _ = bls_calls
    in_flight = {"now": 0, "most": 0, "calls": 0}
    exec_sync = pb.InferenceRequest.exec

    async def slow_exec(self):
        in_flight["now"] += 1
        in_flight["calls"] += 1
        in_flight["most"] = max(in_flight["most"], in_flight["now"])
        await asyncio.sleep(0)  # let every other worker run before this call returns
        in_flight["now"] -= 1
        return exec_sync(self)

    monkeypatch.setattr(pb.InferenceRequest, "async_exec", slow_exec)
    (response,) = run(
        model, pb.request(TEXT=pb.strings([_sentences(30)]), LABELS=pb.strings(list(LABELS)))
    )
    assert len(result_of(response).windows) == 30
    assert in_flight["calls"] == 30  # one engine call per window
    assert in_flight["most"] == model.model.limits.max_windows_in_flight == 8


def test_instruction_ner_refuses_a_document_over_the_window_limit_before_running_it(bls):
    model, engines = bls
    limited, engines = load_bls(model.model.place, engines, max_windows="12")
    before = sum(engines[0].batches)
    (response,) = run(
        limited, pb.request(TEXT=pb.strings([_sentences(30)]), LABELS=pb.strings(list(LABELS)))
    )
    assert response.error().code() == pb.TritonError.INVALID_ARG
    assert (
        response.error()
        .message()
        .startswith("TEXT: splits into more than 12 windows (engine calls) by character ")
    )
    assert "over the limit of 12 per request" in response.error().message()
    assert sum(engines[0].batches) == before


def _score_request(**extra):
    return pb.request(
        TEXT=pb.strings(["Peter Blackburn met the EU in Brussels ."]),
        LABELS=pb.strings(list(LABELS)),
        **extra,
    )


def _scored_result(model, engine, confidence, **extra):
    """Run the score request with ``engine`` writing entities at ``confidence``, then reset it."""
    engine.confidence = confidence
    try:
        (response,) = run(model, _score_request(**extra))
    finally:
        engine.confidence = {}
    return result_of(response)


def test_instruction_ner_scores_every_entity_by_default(bls):
    model, engines = bls
    result = _scored_result(model, engines[0], {"EU": 0.1})
    scores = {e.text: e.score for e in result.entities}
    assert scores["EU"] < 0.5 < scores["Brussels"]
    assert all(0.0 <= s <= 1.0 for s in scores.values())


def test_instruction_ner_min_score_drops_uncertain_entities_keeping_the_order(bls):
    model, engines = bls
    min_score = np.array([[0.5]], dtype=np.float32)
    result = _scored_result(model, engines[0], {"EU": 0.1}, MIN_SCORE=min_score)
    assert [e.text for e in result.entities] == ["Peter Blackburn", "Brussels"]


def test_instruction_ner_without_scores_asks_the_engine_for_none(bls_calls):
    model, _ = bls_calls
    engine, sent = pb.ROUTES["engine"], []

    def recording(request):
        sent.append({t.name() for t in request.inputs()} | set(request.requested_output_names))
        return engine(request)

    pb.ROUTES["engine"] = recording
    try:
        (off,) = run(model, _score_request(RETURN_SCORES=np.array([[False]])))
        (on,) = run(model, _score_request())
    finally:
        pb.ROUTES["engine"] = engine
    entities = result_of(off).entities
    assert len(entities) == 3 and not any(e.HasField("score") for e in entities)
    assert all(e.HasField("score") for e in result_of(on).entities)
    assert "return_log_probs" not in sent[0] and "output_log_probs" not in sent[0]
    assert {"return_log_probs", "output_log_probs"} <= sent[1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"MIN_SCORE": np.array([[1.5]], dtype=np.float32)}, "MIN_SCORE: row 0 is 1.5, expected"),
        (
            {
                "MIN_SCORE": np.array([[0.5]], dtype=np.float32),
                "RETURN_SCORES": np.array([[False]]),
            },
            "MIN_SCORE: row 0 is 0.5 but RETURN_SCORES is false",
        ),
    ],
)
def test_instruction_ner_refuses_bad_score_options_as_invalid_arg(bls, extra, message):
    model, _ = bls
    (response,) = run(model, _score_request(**extra))
    assert response.error().code() == pb.TritonError.INVALID_ARG
    assert response.error().message().startswith(message)


def test_instruction_ner_refuses_to_load_with_an_unknown_step_place():
    values = {**model_values("instruction_ner"), "steps": "elsewhere"}
    with pytest.raises(ValueError, match=re.escape("parameter steps is 'elsewhere', expected")):
        pb.load_model("instruction_ner", values)


def _document_request(count):
    return pb.request(TEXT=pb.strings([_sentences(count)]), LABELS=pb.strings(list(LABELS)))


def test_embedded_instruction_ner_answers_on_the_calling_thread_without_a_coroutine(embedded):
    model, _ = embedded
    returned = model.execute([_document_request(1)])
    assert isinstance(returned, list)  # the stub sends a list at once, no event-loop hop
    assert len(result_of(returned[0]).windows) == 1


def test_instruction_ner_with_step_models_returns_a_coroutine_for_the_event_loop(bls_calls):
    model, _ = bls_calls
    returned = model.execute([_document_request(1)])
    assert asyncio.iscoroutine(returned)
    (response,) = asyncio.run(returned)
    assert len(result_of(response).windows) == 1


def test_embedded_instruction_ner_batches_the_windows_of_every_request_together(embedded):
    model, engines = embedded
    responses = run(model, _document_request(3), _document_request(2), _document_request(1))
    assert [len(result_of(r).windows) for r in responses] == [3, 2, 1]
    assert engines[0].batches == [6]  # one engine call for the six windows of the batch


def test_embedded_instruction_ner_runs_a_long_document_in_engine_batches_of_engine_batch(
    embedded,
):
    model, engines = embedded
    (response,) = run(model, _document_request(20))
    assert len(result_of(response).windows) == 20
    assert engines[0].batches == [8, 8, 4]
    assert [e.text for e in result_of(response).entities] == ["EU"] * 20


def test_embedded_instruction_ner_stops_a_cancelled_document_before_its_next_engine_batch(
    embedded,
):
    model, engines = embedded
    gone, staying = _document_request(20), _document_request(3)
    gone.cancel_after_checks = 0  # the caller has left once the first engine batch runs
    responses = run(model, gone, staying)
    assert responses[0].error().code() == pb.TritonError.CANCELLED
    assert responses[0].error().message() == (
        "request cancelled by the caller after 8 of 20 windows; the rest were not run"
    )
    assert len(result_of(responses[1]).windows) == 3
    # windows run shortest prompt first, in request order: the first batch is 8 of the
    # document's, the second the other request's 3; the document's other 12 never ran
    assert engines[0].batches == [8, 3]


def test_embedded_instruction_ner_reports_an_engine_failure_as_internal_for_its_batch_only(
    embedded, monkeypatch
):
    model, engines = embedded
    generate = engines[0].generate

    def failing_second_batch(inputs, *args, **kwargs):
        if engines[0].batches:
            raise RuntimeError("engine down")
        return generate(inputs, *args, **kwargs)

    monkeypatch.setattr(engines[0], "generate", failing_second_batch)
    pb.LOG.clear()
    short = pb.request(TEXT=pb.strings(["EU ."]), LABELS=pb.strings(list(LABELS)))
    first, second = run(model, short, _document_request(12))
    # the shortest prompt runs first: the short request was answered in the first batch
    assert [e.text for e in result_of(first).entities] == ["EU"]
    assert second.error().code() == pb.TritonError.INTERNAL
    assert second.error().message() == (
        "internal error in model instruction_ner (RuntimeError); see the server log"
    )
    assert "engine down" in pb.LOG[-1][1]


def test_embedded_instruction_ner_without_scores_asks_the_engine_for_none(embedded, monkeypatch):
    model, engines = embedded
    asked = []
    generate = engines[0].generate

    def recording(inputs, max_new_tokens, end_id, return_log_probs=False):
        asked.append(return_log_probs)
        return generate(inputs, max_new_tokens, end_id, return_log_probs)

    monkeypatch.setattr(engines[0], "generate", recording)
    (off,) = run(model, _score_request(RETURN_SCORES=np.array([[False]])))
    (on,) = run(model, _score_request())
    assert not any(e.HasField("score") for e in result_of(off).entities)
    assert all(e.HasField("score") for e in result_of(on).entities)
    assert asked == [False, True]


def test_embedded_instruction_ner_releases_its_engine_on_unload(embedded, monkeypatch):
    model, engines = embedded
    closed = []
    monkeypatch.setattr(engines[0], "close", lambda: closed.append(True))
    model.finalize()
    assert closed == [True]


@pytest.mark.parametrize("steps", ["embedded", "inline"])
def test_instruction_ner_scores_by_the_formula_of_its_score_method_parameter(steps, routed):
    # Peter Blackburn's mention tokens are written with p 0.5, its label's with 0.9: the
    # minimum is 0.5, the product lies below it and the geometric mean above it.
    scores = {}
    saved = dict(pb.ROUTES)
    try:
        for method in ("geometric_mean", "minimum", "product"):
            model, engines = load_bls(steps, routed, score_method=method)
            result = _scored_result(model, engines[0], {"Peter Blackburn": 0.5})
            entities = {e.text: e.score for e in result.entities}
            scores[method] = entities["Peter Blackburn"]
    finally:
        pb.ROUTES.clear()
        pb.ROUTES.update(saved)
    assert scores["minimum"] == pytest.approx(0.5, rel=1e-6)
    assert scores["product"] < scores["minimum"] < scores["geometric_mean"] < 0.9


def test_instruction_ner_refuses_to_load_with_an_unknown_score_method():
    with pytest.raises(ValueError, match="unknown score method 'mean': expected one of"):
        load_bls("inline", score_method="mean")
