"""Exception hierarchy of the client and the one function that maps transport errors onto it."""

from __future__ import annotations

import grpc
from tritonclient.utils import InferenceServerException

__all__ = [
    "DeadlineExceededError",
    "InstructNERError",
    "InvalidInputError",
    "ModelNotReadyError",
    "OverloadedError",
    "ServerUnavailableError",
    "UnsupportedTaskError",
    "map_error",
]


class InstructNERError(Exception):
    """Base class of every error the client raises.

    Attributes:
        code: the gRPC status name the server (or the gRPC runtime) answered with, such as
            ``"INTERNAL"``; ``None`` when the error was found by the client itself.

    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidInputError(InstructNERError, ValueError):
    """The request is malformed: found by the client before sending, or the server's INVALID_ARG."""


class ServerUnavailableError(InstructNERError):
    """The server cannot be reached or refuses connections (after the bounded retries)."""


class OverloadedError(ServerUnavailableError):
    """The server is up but refused the call for load: a full queue or a queue timeout.

    A :class:`ServerUnavailableError`, so handlers of that keep working; raised after the
    client's bounded retries. Sending slower (lower ``max_concurrency``) or later helps.
    """


class UnsupportedTaskError(InvalidInputError):
    """The served model was not trained for the task called; the message names its tasks."""


class DeadlineExceededError(InstructNERError, TimeoutError):
    """The call did not complete within its timeout."""


class ModelNotReadyError(InstructNERError):
    """The server is up, but the model (or the requested version) is unknown or not loaded."""


# Triton answers UNAVAILABLE both for a server that is going away and for a model version that
# is still loading; the message tells them apart.
_MODEL_NOT_READY_MARKERS = ("is not at ready state", "has no available versions")
# A server started with --grpc-restricted-protocol answers UNAVAILABLE to calls that lack the
# required header; retrying cannot help, the caller's metadata is wrong.
_RESTRICTED_MARKER = "protocol is restricted"
# Triton's messages for a request refused for load (a model's queue full, or a request that
# waited longer than the queue timeout), and the public model's for a step that refused one.
_OVERLOAD_MARKERS = ("Exceeds maximum queue size", "Request timeout expired", "is overloaded")
# The server's message for a task the model was not trained for (instructner.serving.requests).
_UNSUPPORTED_TASK_MARKER = "is not served by this model"
# What gRPC reports when the address answers HTTP/1 (e.g. Triton's HTTP port) instead of gRPC.
_NOT_GRPC_MARKERS = ("Socket closed", "Failed parsing HTTP/2", "http1.x server")
_NOT_GRPC_HINT = (
    " (is this Triton's HTTP port? The client speaks gRPC: use the gRPC port, 8001 by default)"
)


def _status_name(error: BaseException) -> str | None:
    """Return the gRPC status name carried by ``error`` (``"UNAVAILABLE"``), or None."""
    if isinstance(error, InferenceServerException):
        status = error.status()
        if not status:
            return None
        # tritonclient's gRPC client stores str(grpc.StatusCode.X) == "StatusCode.X".
        return str(status).rsplit(".", 1)[-1].upper()
    if isinstance(error, grpc.RpcError) and hasattr(error, "code"):
        code = error.code()
        return code.name if isinstance(code, grpc.StatusCode) else None
    return None


def _details(error: BaseException) -> str:
    if isinstance(error, InferenceServerException):
        return str(error.message() or "")
    if isinstance(error, grpc.RpcError) and hasattr(error, "details"):
        return str(error.details() or "")
    return str(error)


def map_error(error: BaseException, *, target: str) -> InstructNERError:
    """Translate a gRPC or tritonclient error into the client's exception hierarchy.

    Args:
        error: a ``grpc.RpcError`` (including ``grpc.aio.AioRpcError``) or a tritonclient
            ``InferenceServerException``; anything else maps to :class:`InstructNERError`.
        target: what the call was talking to (``"model 'instruction_ner' at host:port"``),
            used in the message so that the error says where it came from.

    Returns:
        The exception to raise (the caller chains it ``from error``).

    """
    if isinstance(error, InstructNERError):
        return error
    code = _status_name(error)
    details = _details(error).strip() or "no details"
    if code == "INVALID_ARGUMENT" and _UNSUPPORTED_TASK_MARKER in details:
        return UnsupportedTaskError(f"{target} rejected the request: {details}", code=code)
    if code == "INVALID_ARGUMENT" or code == "OUT_OF_RANGE":
        return InvalidInputError(f"{target} rejected the request: {details}", code=code)
    if code == "DEADLINE_EXCEEDED":
        return DeadlineExceededError(
            f"{target} did not answer within the timeout: {details}", code=code
        )
    if code == "NOT_FOUND" or (
        code == "UNAVAILABLE" and any(m in details for m in _MODEL_NOT_READY_MARKERS)
    ):
        return ModelNotReadyError(f"{target} is not ready: {details}", code=code)
    if code == "UNAVAILABLE" and _RESTRICTED_MARKER in details:
        return InstructNERError(
            f"{target} refused the call (check the metadata headers): {details}", code=code
        )
    if code == "UNAVAILABLE" and any(m in details for m in _OVERLOAD_MARKERS):
        return OverloadedError(f"{target} is overloaded: {details}", code=code)
    if code == "UNAVAILABLE":
        hint = _NOT_GRPC_HINT if any(m in details for m in _NOT_GRPC_MARKERS) else ""
        return ServerUnavailableError(f"{target} is unavailable: {details}{hint}", code=code)
    if code is None:
        return InstructNERError(f"{target} call failed: {details}")
    return InstructNERError(f"{target} failed with {code}: {details}", code=code)
