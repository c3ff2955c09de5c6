"""The one mapping from gRPC / tritonclient errors to the client's exception hierarchy."""

import grpc
import pytest
from instructner_client import (
    DeadlineExceededError,
    InstructNERError,
    InvalidInputError,
    ModelNotReadyError,
    OverloadedError,
    ServerUnavailableError,
    map_error,
)
from tritonclient.utils import InferenceServerException

TARGET = "model 'instruction_ner' at localhost:8001"


def triton_error(code: str | None, message: str) -> InferenceServerException:
    # tritonclient's gRPC client stores str(grpc.StatusCode.X) as the status.
    return InferenceServerException(
        msg=message, status=None if code is None else f"StatusCode.{code}"
    )


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_invalid_argument_maps_to_invalid_input_with_server_message():
    error = map_error(triton_error("INVALID_ARGUMENT", "input 'LABELS' is empty"), target=TARGET)
    assert type(error) is InvalidInputError
    assert str(error) == f"{TARGET} rejected the request: input 'LABELS' is empty"
    assert error.code == "INVALID_ARGUMENT"
    assert isinstance(error, ValueError)


def test_out_of_range_maps_to_invalid_input():
    error = map_error(triton_error("OUT_OF_RANGE", "text too long"), target=TARGET)
    assert type(error) is InvalidInputError
    assert error.code == "OUT_OF_RANGE"


def test_unavailable_maps_to_server_unavailable():
    error = map_error(
        triton_error("UNAVAILABLE", "failed to connect to all addresses"), target=TARGET
    )
    assert type(error) is ServerUnavailableError
    assert str(error) == f"{TARGET} is unavailable: failed to connect to all addresses"


@pytest.mark.parametrize(
    "message",
    [
        "Exceeds maximum queue size",
        "Request timeout expired",
        "model engine is overloaded (window 0-4): Exceeds maximum queue size",
    ],
)
def test_unavailable_for_load_maps_to_overloaded_which_is_a_server_unavailable_error(message):
    error = map_error(triton_error("UNAVAILABLE", message), target=TARGET)
    assert type(error) is OverloadedError
    assert isinstance(error, ServerUnavailableError)
    assert str(error) == f"{TARGET} is overloaded: {message}"
    assert error.code == "UNAVAILABLE"


def test_unavailable_for_model_version_not_ready_maps_to_model_not_ready():
    error = map_error(
        triton_error("UNAVAILABLE", "'instruction_ner' version 1 is not at ready state"),
        target=TARGET,
    )
    assert type(error) is ModelNotReadyError
    assert error.code == "UNAVAILABLE"


def test_unavailable_for_a_missing_auth_header_is_a_refusal_not_unavailability():
    message = "This protocol is restricted, expecting header 'triton-grpc-protocol-x-api-key'"
    error = map_error(triton_error("UNAVAILABLE", message), target=TARGET)
    assert type(error) is InstructNERError
    assert str(error) == f"{TARGET} refused the call (check the metadata headers): {message}"


def test_not_found_maps_to_model_not_ready():
    error = map_error(
        triton_error("NOT_FOUND", "Request for unknown model: 'nope' is not found"), target=TARGET
    )
    assert type(error) is ModelNotReadyError
    assert str(error) == f"{TARGET} is not ready: Request for unknown model: 'nope' is not found"


def test_deadline_exceeded_maps_to_deadline_error_which_is_a_timeout_error():
    error = map_error(triton_error("DEADLINE_EXCEEDED", "Deadline Exceeded"), target=TARGET)
    assert type(error) is DeadlineExceededError
    assert isinstance(error, TimeoutError)
    assert str(error) == f"{TARGET} did not answer within the timeout: Deadline Exceeded"


def test_internal_maps_to_base_error_naming_the_code():
    error = map_error(triton_error("INTERNAL", "engine failed"), target=TARGET)
    assert type(error) is InstructNERError
    assert str(error) == f"{TARGET} failed with INTERNAL: engine failed"
    assert error.code == "INTERNAL"


def test_triton_error_without_status_maps_to_base_error_without_code():
    error = map_error(triton_error(None, "unable to parse response"), target=TARGET)
    assert type(error) is InstructNERError
    assert error.code is None
    assert str(error) == f"{TARGET} call failed: unable to parse response"


def test_empty_details_are_reported_as_no_details():
    error = map_error(triton_error("UNKNOWN", ""), target=TARGET)
    assert str(error) == f"{TARGET} failed with UNKNOWN: no details"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidInputError),
        (grpc.StatusCode.UNAVAILABLE, ServerUnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
        (grpc.StatusCode.NOT_FOUND, ModelNotReadyError),
        (grpc.StatusCode.PERMISSION_DENIED, InstructNERError),
    ],
)
def test_raw_grpc_errors_map_by_status_code(code, expected):
    error = map_error(FakeRpcError(code, "details here"), target=TARGET)
    assert type(error) is expected
    assert error.code == code.name
    assert "details here" in str(error)


def test_aio_rpc_error_maps_like_a_sync_one():
    raw = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        details="connection refused",
    )
    error = map_error(raw, target=TARGET)
    assert type(error) is ServerUnavailableError
    assert str(error) == f"{TARGET} is unavailable: connection refused"


def test_client_errors_pass_through_unchanged():
    original = InvalidInputError("text must not be empty")
    assert map_error(original, target=TARGET) is original


def test_unrelated_exception_maps_to_base_error_with_its_message():
    error = map_error(RuntimeError("boom"), target=TARGET)
    assert type(error) is InstructNERError
    assert str(error) == f"{TARGET} call failed: boom"
