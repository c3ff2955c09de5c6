import asyncio

import fake_pb_utils as pb
import pytest
from serving_models import LABELS, load, route_pipeline

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
