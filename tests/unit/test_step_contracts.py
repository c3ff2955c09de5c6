"""The engine request and answer columns match the engine contract; BLS failures map to codes."""

from __future__ import annotations

import asyncio

import fake_pb_utils as pb
import numpy as np
import pytest

from instructner.serving import engine_answer, engine_contract, engine_request
from instructner.serving.errors import RequestError
from instructner.serving.triton_glue import (
    Cancelled,
    StepFailed,
    StepUnavailable,
    call_step,
    error_response,
)


def test_the_engine_request_columns_are_engine_inputs_by_their_contract_names():
    assert set(engine_request.ENGINE_INPUTS) == set(engine_request.OUTPUT_NAMES)
    assert set(engine_request.ENGINE_INPUTS.values()) <= set(engine_contract.INPUT_NAMES)


def test_the_answer_columns_are_engine_outputs_by_their_contract_names():
    assert set(engine_answer.FROM_ENGINE) <= set(engine_contract.OUTPUT_NAMES)
    assert set(engine_answer.FROM_ENGINE.values()) == {
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


def test_an_engine_answer_wider_than_the_engine_may_write_is_refused_naming_its_shape():
    from instructner.serving.limits import Limits
    from instructner.serving.requests import ExtractionRequest

    limits = Limits(max_input_tokens=10, max_output_tokens=5)
    window = ExtractionRequest("Paris , Paris .", "extract", (), ())
    answer = {
        "TOKENS_BATCH": np.full((1, 1, 4000), 5, dtype=np.int32),
        "SEQUENCE_LENGTH": np.array([[4000]], dtype=np.int32),
    }
    with pytest.raises(RequestError, match=r"TOKENS_BATCH: shape \[1, 1, 4000\] is over the"):
        engine_answer.answer_rows([window], answer.get, limits)
    answer["TOKENS_BATCH"] = np.full((1, 9, 4), 5, dtype=np.int32)
    answer["SEQUENCE_LENGTH"] = np.full((1, 9), 4, dtype=np.int32)
    with pytest.raises(RequestError, match="over the limits of 8 beams"):
        engine_answer.answer_rows([window], answer.get, limits)
