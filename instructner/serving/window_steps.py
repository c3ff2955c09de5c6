"""The per-window steps of the serving pipeline, shared by every place that runs it.

:func:`plan_request` splits a validated request into windows that fit the engine;
:func:`prepare_window` builds a window's prompt ids; :func:`postprocess` parses the engine's
answer for a window into a window result. :func:`preprocess` validates and encodes one window
given by a caller (benchmarks and tests build engine inputs with it). The orchestration around
them (batches, cancellation, merging) is :mod:`instructner.serving.orchestrator`.
"""

from __future__ import annotations

from collections.abc import Sequence

from instructner.method.confidence import DEFAULT_SCORE_METHOD
from instructner.method.confidence import token_probs as pair_token_probs
from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits
from instructner.serving.protos import ExtractionResult
from instructner.serving.requests import ExtractionRequest, validate_request
from instructner.serving.results import window_result
from instructner.serving.tokenizer import PromptTokenizer, encode_window, prompt_measure
from instructner.serving.windows import Window, plan_windows


def plan_request(
    request: ExtractionRequest, tokenizer: PromptTokenizer, limits: Limits
) -> list[Window]:
    """Return the windows of a validated request (see :mod:`instructner.serving.windows`)."""
    measure = prompt_measure(tokenizer, request.task, request.labels)
    return plan_windows(request, measure, limits.max_input_tokens, limits.max_windows)


def prepare_window(
    tokenizer: PromptTokenizer, limits: Limits, request: ExtractionRequest, window: Window
) -> tuple[ExtractionRequest, list[int]]:
    """Return one window of a validated ``request`` as its own request, with its prompt ids.

    A window is part of a valid text and carries the given entities that occur in it, so it
    is not validated again (each window is validated once per path).

    Raises:
        RequestError: the window's prompt is over the engine's input limit.

    """
    part = ExtractionRequest(
        window.text, request.task, request.labels, window.entities, window.spans
    )
    ids = encode_window(
        tokenizer, part.task, part.text, part.labels, part.entities, limits.max_input_tokens
    )
    return part, ids


def prepare_planned_window(
    tokenizer: PromptTokenizer, limits: Limits, request: ExtractionRequest, window: Window
) -> tuple[ExtractionRequest, list[int]]:
    """:func:`prepare_window` for a window :func:`plan_request` made for ``request``.

    The planner sized the window to fit the engine, so a prompt over the limit is a fault of
    the server, not of the caller.

    Raises:
        RuntimeError: the window's prompt is over the engine's input limit.

    """
    try:
        return prepare_window(tokenizer, limits, request, window)
    except RequestError as error:
        where = f"window {window.start}-{window.end}"
        raise RuntimeError(f"{where} does not fit the engine: {error}") from error


def preprocess(
    tokenizer: PromptTokenizer,
    limits: Limits,
    text: str,
    task: str | None = None,
    labels: Sequence[str] = (),
    entities: Sequence[str] = (),
) -> tuple[ExtractionRequest, list[int]]:
    """Validate one window's request and return it with its prompt token ids.

    Raises:
        RequestError: invalid input, or a prompt over the engine's input limit.

    """
    request = validate_request(text, task, labels, entities, limits)
    ids = encode_window(
        tokenizer,
        request.task,
        request.text,
        request.labels,
        request.entities,
        limits.max_input_tokens,
    )
    return request, ids


def postprocess(
    tokenizer: PromptTokenizer,
    request: ExtractionRequest,
    token_ids: Sequence[int],
    input_tokens: int = 0,
    request_output_len: int | None = None,
    log_probs: Sequence[float] | None = None,
    score_method: str = DEFAULT_SCORE_METHOD,
) -> ExtractionResult:
    """Decode one window's generated ids and parse them into a window result.

    ``output_limit_reached`` is set when the engine generated ``request_output_len`` tokens
    (it may then have stopped before the end of its answer). With ``log_probs`` (one per
    generated id) the entities get scores, by the formula ``score_method``.
    """
    probs = None
    if log_probs is None:
        answer = tokenizer.decode(token_ids)
    else:
        try:
            answer, spans = tokenizer.decode_with_spans(token_ids)
            probs = pair_token_probs(spans, log_probs)
        except ValueError:  # tokens that cannot be mapped to text: entities get no score
            answer = tokenizer.decode(token_ids)
    limit_reached = request_output_len is not None and len(token_ids) >= request_output_len
    return window_result(
        request.task,
        request.text,
        answer,
        request.labels,
        request.entities,
        spans=request.spans,
        input_tokens=input_tokens,
        output_tokens=len(token_ids),
        output_limit_reached=limit_reached,
        token_probs=probs,
        score_method=score_method,
        aliases=tokenizer.label_aliases,
    )
