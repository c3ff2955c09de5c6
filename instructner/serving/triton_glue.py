"""What every Triton python model here does the same way, with ``pb_utils`` passed in.

The module never imports ``triton_python_backend_utils`` (it exists only inside the Triton
stub); the models pass it in, and the unit tests pass a fake. One response per request, in
order: a :class:`RequestError` becomes ``INVALID_ARG`` with its message; anything else becomes
a short ``INTERNAL`` message to the client and the traceback in the server log. The public
model calls its steps through :func:`call_step` (BLS) and answers with :func:`error_response`.
"""

from __future__ import annotations

import hmac
import json
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructner.serving.errors import RequestError, bounded_message
from instructner.serving.tensors import GetInput

Outputs = Mapping[str, np.ndarray]

# The internal engine model answers only the public model's calls: the launcher puts a random
# key in the server's environment, the BLS sends it as a request parameter, and a call without
# it is refused. Nobody outside the
# server process tree learns the key (it is in no config, log or command line).
INTERNAL_KEY_ENV = "INSTRUCTNER_INTERNAL_KEY"
INTERNAL_KEY_PARAMETER = "instructner_internal_key"


def internal_key() -> str | None:
    """Return the server's internal key, or None when the server was started without one."""
    return os.environ.get(INTERNAL_KEY_ENV) or None


def internal_parameters(key: str | None) -> dict[str, str]:
    """Return the request parameters that carry ``key`` on a call to an internal step."""
    return {INTERNAL_KEY_PARAMETER: key} if key else {}


def refuse_direct_call(pb_utils: Any, model: str, request: Any, key: str | None) -> Any | None:
    """Return the NOT_FOUND response for a call without the internal key, else None.

    Without a key (a server started by hand, unit tests) every call is accepted.
    """
    if key is None:
        return None
    try:
        parameters = json.loads(request.parameters() or "{}")
    except (AttributeError, TypeError, ValueError):
        parameters = {}
    given = parameters.get(INTERNAL_KEY_PARAMETER) if isinstance(parameters, dict) else None
    if isinstance(given, str) and hmac.compare_digest(given.encode(), key.encode()):
        return None
    return pb_utils.InferenceResponse(
        output_tensors=[],
        error=pb_utils.TritonError(
            f"model {model} is an internal step of instruction_ner and answers only its "
            "calls; send requests to instruction_ner",
            pb_utils.TritonError.NOT_FOUND,
        ),
    )


# Parameters naming folders; the build writes them relative to the model repository (a
# model's config is public), see instructner.deploy.build.PATH_PARAMETERS.
PATH_PARAMETERS = ("tokenizer_dir", "engine_dir", "embedded_engine_dir")


def model_parameters(args: Mapping[str, str]) -> dict[str, str]:
    """Return the ``parameters`` of the model config that Triton passes to ``initialize``.

    A relative folder parameter is resolved against the model repository (the parent of the
    model's own folder, which Triton passes as ``model_repository``).
    """
    config = json.loads(args["model_config"])
    parameters = {
        key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()
    }
    repository = Path(args["model_repository"]).parent if args.get("model_repository") else None
    for key in PATH_PARAMETERS:
        value = parameters.get(key)
        if value and repository is not None and not Path(value).is_absolute():
            parameters[key] = str((repository / value).resolve())
    return parameters


# Where instruction_ner runs the engine: "embedded" (the CPU engine in its own process: no
# model call per window) or "inline" (one call to the engine model per window: the GPU layout).
# Prompts and answers are always handled in instruction_ner itself.
STEP_PLACES = ("embedded", "inline")


def steps_place(parameters: Mapping[str, str]) -> str:
    """Return the model config's ``steps`` parameter, one of :data:`STEP_PLACES`.

    Raises:
        ValueError: ``steps`` is missing or none of them.

    """
    steps = parameters.get("steps")
    if steps not in STEP_PLACES:
        raise ValueError(f"parameter steps is {steps!r}, expected one of {list(STEP_PLACES)}")
    return steps


def input_getter(pb_utils: Any, request: Any) -> GetInput:
    """Return ``get(name)``: the named input of ``request`` as numpy, or None when absent."""

    def get(name: str) -> np.ndarray | None:
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        return None if tensor is None else tensor.as_numpy()

    return get


def success(pb_utils: Any, outputs: Outputs) -> Any:
    """Return an InferenceResponse holding ``outputs``."""
    return pb_utils.InferenceResponse(
        output_tensors=[pb_utils.Tensor(name, array) for name, array in outputs.items()]
    )


def invalid(pb_utils: Any, error: RequestError) -> Any:
    """Return the INVALID_ARG response for a bad request."""
    return pb_utils.InferenceResponse(
        output_tensors=[],
        # RequestError bounds its own message (serving.errors.bounded_message)
        error=pb_utils.TritonError(str(error), pb_utils.TritonError.INVALID_ARG),
    )


def internal(pb_utils: Any, model: str, error: BaseException, log: bool = True) -> Any:
    """Log the traceback (unless ``log`` is false) and return a short INTERNAL response."""
    if log:
        pb_utils.Logger.log_error(
            f"{model}: unexpected {type(error).__name__}: "
            + "".join(traceback.format_exception(error))
        )
    return pb_utils.InferenceResponse(
        output_tensors=[],
        error=pb_utils.TritonError(
            f"internal error in model {model} ({type(error).__name__}); see the server log"
        ),
    )


def respond(
    pb_utils: Any,
    model: str,
    request: Any,
    handle: Callable[[Any], Outputs],
    key: str | None = None,
) -> Any:
    """Return the response of ``handle(request)``, turning exceptions into error responses.

    With ``key``, a request that does not carry it is refused (:func:`refuse_direct_call`).
    """
    refused = refuse_direct_call(pb_utils, model, request, key)
    if refused is not None:
        return refused
    try:
        return success(pb_utils, handle(request))
    except RequestError as error:
        return invalid(pb_utils, error)
    except Exception as error:  # noqa: BLE001 - one bad request must not fail its batch
        return internal(pb_utils, model, error)


class StepFailed(RuntimeError):
    """A step model the public model called answered with an error."""


class StepUnavailable(StepFailed):
    """A step model refused the call for now (its queue is full or timed out)."""


class Cancelled(RuntimeError):
    """The caller cancelled the request (or its deadline passed) before all work ran."""


async def call_step(
    pb_utils: Any,
    model: str,
    inputs: Mapping[str, np.ndarray],
    outputs: Sequence[str],
    where: str,
    parameters: Mapping[str, str],
) -> dict[str, np.ndarray]:
    """Call ``model`` from a BLS model and return its ``outputs`` as numpy.

    Raises:
        StepUnavailable: the step answered UNAVAILABLE (overload; the client may retry).
        StepFailed: any other error of the step, with ``where`` (which window) in the message.

    """
    request = pb_utils.InferenceRequest(
        model_name=model,
        inputs=[pb_utils.Tensor(name, array) for name, array in inputs.items()],
        requested_output_names=list(outputs),
        parameters=dict(parameters),
    )
    response = await request.async_exec()
    if response.has_error():
        error = response.error()
        if error.code() == pb_utils.TritonError.UNAVAILABLE:
            raise StepUnavailable(f"model {model} is overloaded ({where}): {error.message()}")
        raise StepFailed(f"model {model} failed on {where}: {error.message()}")
    return {name: pb_utils.get_output_tensor_by_name(response, name).as_numpy() for name in outputs}


def error_response(pb_utils: Any, model: str, error: BaseException) -> Any:
    """Return the response for a public model's failed request.

    A bad request gets INVALID_ARG, a request its caller abandoned CANCELLED, overload inside
    the pipeline UNAVAILABLE (as for a full queue of the public model; docs/reliability.md);
    anything else a short INTERNAL message with the traceback in the log.
    """
    if isinstance(error, RequestError):
        return invalid(pb_utils, error)
    codes = {Cancelled: "CANCELLED", StepUnavailable: "UNAVAILABLE"}
    for kind, code in codes.items():
        if isinstance(error, kind):
            return pb_utils.InferenceResponse(
                output_tensors=[],
                error=pb_utils.TritonError(
                    bounded_message(str(error)), getattr(pb_utils.TritonError, code)
                ),
            )
    return internal(pb_utils, model, error)
