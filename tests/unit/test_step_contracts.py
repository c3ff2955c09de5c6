"""The step contracts agree with each other and the BLS glue maps step failures to codes."""

from __future__ import annotations

import asyncio

import fake_pb_utils as pb
import numpy as np
import pytest

from instructner.serving import engine_contract, postprocessing_contract, preprocessing_contract
from instructner.serving.errors import RequestError
from instructner.serving.triton_glue import (
    Cancelled,
    StepFailed,
    StepUnavailable,
    call_step,
    error_response,
)


def test_preprocessing_outputs_feed_engine_inputs_by_their_contract_names():
    assert set(preprocessing_contract.ENGINE_INPUTS) == set(preprocessing_contract.OUTPUT_NAMES)
    assert set(preprocessing_contract.ENGINE_INPUTS.values()) <= set(engine_contract.INPUT_NAMES)


def test_engine_outputs_feed_postprocessing_inputs_by_their_contract_names():
    assert set(postprocessing_contract.FROM_ENGINE) <= set(engine_contract.OUTPUT_NAMES)
    assert set(postprocessing_contract.FROM_ENGINE.values()) == {
        "TOKENS_BATCH",
        "SEQUENCE_LENGTH",
        "OUTPUT_LOG_PROBS",
    }


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (RequestError("TEXT", "must not be empty"), pb.TritonError.INVALID_ARG, "TEXT"),
        (Cancelled("request cancelled by the caller"), pb.TritonError.CANCELLED, "cancelled"),
        (StepUnavailable("model engine is overloaded"), pb.TritonError.UNAVAILABLE, "overloaded"),
        (
            StepFailed("model engine failed"),
            pb.TritonError.INTERNAL,
            "internal error in model instruction_ner (StepFailed); see the server log",
        ),
        (
            ValueError("boom"),
            pb.TritonError.INTERNAL,
            "internal error in model instruction_ner (ValueError); see the server log",
        ),
    ],
)
def test_error_response_maps_each_failure_to_its_code(error, code, message):
    response = error_response(pb, "instruction_ner", error)
    assert response.error().code() == code
    assert message in response.error().message()


def _route(model: str, response: pb.InferenceResponse) -> None:
    pb.ROUTES[model] = lambda request: response


def test_call_step_returns_the_requested_outputs_and_sends_the_parameters():
    seen = {}

    def answer(request):
        seen["parameters"] = request.parameters()
        return pb.InferenceResponse([pb.Tensor("OUT", np.array([[7]], dtype=np.int32))])

    pb.ROUTES["step"] = answer
    try:
        out = asyncio.run(call_step(pb, "step", {"IN": np.zeros((1, 1))}, ["OUT"], "w", {"k": "v"}))
    finally:
        del pb.ROUTES["step"]
    assert out["OUT"].tolist() == [[7]]
    assert '"k": "v"' in seen["parameters"]


@pytest.mark.parametrize(
    ("code", "kind", "message"),
    [
        (pb.TritonError.UNAVAILABLE, StepUnavailable, "model step is overloaded (window 0-5)"),
        (pb.TritonError.INVALID_ARG, StepFailed, "model step failed on window 0-5: bad"),
    ],
)
def test_call_step_raises_by_the_step_error_code(code, kind, message):
    _route("step", pb.InferenceResponse([], pb.TritonError("bad", code)))
    try:
        with pytest.raises(kind) as raised:
            asyncio.run(call_step(pb, "step", {}, ["OUT"], "window 0-5", {}))
    finally:
        del pb.ROUTES["step"]
    assert message in str(raised.value)
