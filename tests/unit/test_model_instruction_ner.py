import asyncio

import fake_pb_utils as pb
import pytest
from serving_models import LABELS, load, model_values, route_pipeline

from instructner.serving.protos import ExtractionResult


@pytest.fixture(scope="module")
def bls():
    engines = route_pipeline()
    return load("instruction_ner"), engines


def run(model, *requests):
    return asyncio.run(model.execute(list(requests)))


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


def test_instruction_ner_reports_a_failing_step_as_internal_and_logs_it(bls):
    model, _ = bls
    engine = pb.ROUTES["engine"]
    pb.ROUTES["engine"] = lambda request: pb.InferenceResponse([], pb.TritonError("engine down"))
    pb.LOG.clear()
    try:
        (response,) = run(
            model, pb.request(TEXT=pb.strings(["EU ."]), LABELS=pb.strings(list(LABELS)))
        )
    finally:
        pb.ROUTES["engine"] = engine
    assert response.error().code() == pb.TritonError.INTERNAL
    assert response.error().message() == (
        "internal error in model instruction_ner (StepFailed); see the server log"
    )
    assert "model engine failed on window 0-4: engine down" in pb.LOG[-1][1]


def _sentences(count):
    return " ".join(f"Sentence {i} names the EU ." for i in range(count))


def test_instruction_ner_stops_a_cancelled_document_before_its_next_window(bls):
    model, engines = bls
    before = sum(engines[0].batches)
    request = pb.request(TEXT=pb.strings([_sentences(30)]), LABELS=pb.strings(list(LABELS)))
    request.cancel_after_checks = 5  # the caller leaves after five windows have started
    (response,) = run(model, request)
    assert response.error().code() == pb.TritonError.CANCELLED
    assert response.error().message() == (
        "request cancelled by the caller after 5 of 30 windows; the rest were not run"
    )
    assert sum(engines[0].batches) - before == 5


def test_instruction_ner_keeps_at_most_max_windows_in_flight_per_document(bls, monkeypatch):
    model, _ = bls
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
    assert in_flight["calls"] == 90  # three steps per window
    assert in_flight["most"] == model.limits.max_windows_in_flight == 8


def test_instruction_ner_refuses_a_document_over_the_window_limit_before_running_it(bls):
    _, engines = bls
    limited = pb.load_model(
        "instruction_ner", {**model_values("instruction_ner"), "max_windows": "12"}
    )
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
