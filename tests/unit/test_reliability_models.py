"""The public BLS model under overload of the models it calls (fake pb_utils, no server).

``steps: inline``: the BLS calls the engine model (with the engine embedded, the default on
the CPU, there is no engine model queue to overflow; instruction_ner's own queue bound is
tested against a real server).
"""

import asyncio

import fake_pb_utils as pb
import pytest
from serving_models import LABELS, model_values, route_pipeline


@pytest.fixture(scope="module")
def bls():
    route_pipeline()
    return pb.load_model("instruction_ner", {**model_values("instruction_ner"), "steps": "inline"})


def _ner(model, text: str):
    request = pb.request(TEXT=pb.strings([text]), LABELS=pb.strings(list(LABELS)))
    return asyncio.run(model.execute([request]))[0]


def test_a_full_engine_queue_reaches_the_client_as_unavailable_not_internal(bls):
    engine = pb.ROUTES["engine"]
    full = pb.TritonError("Exceeds maximum queue size", pb.TritonError.UNAVAILABLE)
    pb.ROUTES["engine"] = lambda request: pb.InferenceResponse([], full)
    try:
        response = _ner(bls, "EU .")
    finally:
        pb.ROUTES["engine"] = engine
    assert response.error().code() == pb.TritonError.UNAVAILABLE
    assert response.error().message() == (
        "model engine is overloaded (window 0-4): Exceeds maximum queue size"
    )


def test_the_pipeline_serves_again_once_the_engine_has_room(bls):
    response = _ner(bls, "EU .")
    assert not response.has_error(), response.error().message()
