"""The serving pipeline's steps, and the whole pipeline in-process (the reference).

The Triton models run the same steps: ``instruction_ner`` validates and plans windows, builds
each window's prompt (:func:`prepare_window`; with ``steps: models`` the ``preprocessing``
model runs :func:`preprocess`), the ``engine`` model generates, the answer is parsed by
:func:`postprocess` (in the BLS, or the ``postprocessing`` model), and ``instruction_ner``
merges with :func:`instructner.serving.results.merge_windows`. :class:`Pipeline` chains them
in one process, for tests (served output must equal it) and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from instructner.confidence import DEFAULT_SCORE_METHOD
from instructner.confidence import token_probs as pair_token_probs
from instructner.engine import Engine
from instructner.serving.errors import RequestError
from instructner.serving.limits import DEFAULT_LIMITS, Limits
from instructner.serving.protos import ExtractionResult
from instructner.serving.requests import ExtractionRequest, validate_request
from instructner.serving.results import merge_windows, window_result
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
    part = ExtractionRequest(window.text, request.task, request.labels, window.entities)
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
        input_tokens=input_tokens,
        output_tokens=len(token_ids),
        output_limit_reached=limit_reached,
        token_probs=probs,
        score_method=score_method,
        aliases=tokenizer.label_aliases,
    )


@dataclass(frozen=True)
class Query:
    """One document to run through :class:`Pipeline` (checked by :func:`validate_request`)."""

    text: str
    task: str | None = None  # None: the default task (ner)
    labels: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()


@dataclass
class Pipeline:
    """Validate, window, prompt, generate, parse and merge in one process.

    ``scores``: ask the engine for log-probabilities and score every entity, by the formula
    ``score_method`` (the served model's: :func:`instructner.confidence.served_score_method`).
    """

    engine: Engine
    tokenizer: PromptTokenizer
    limits: Limits = DEFAULT_LIMITS
    scores: bool = True
    score_method: str = DEFAULT_SCORE_METHOD

    def run(
        self,
        text: str,
        task: str | None = None,
        labels: Sequence[str] = (),
        entities: Sequence[str] = (),
    ) -> ExtractionResult:
        """Return the result for one document (raises RequestError on invalid input)."""
        return self.run_many([Query(text, task, tuple(labels), tuple(entities))])[0]

    def run_many(self, queries: Sequence[Query]) -> list[ExtractionResult]:
        """Return the results of several documents; all their windows share engine batches.

        Each document is validated once; its windows are encoded by :func:`prepare_window`.
        """
        planned = []
        for query in queries:
            request = validate_request(
                query.text, query.task, query.labels, query.entities, self.limits
            )
            windows = plan_request(request, self.tokenizer, self.limits)
            prepared = [prepare_window(self.tokenizer, self.limits, request, w) for w in windows]
            planned.append((request, windows, prepared))
        prompts = [ids for _, _, prepared in planned for _, ids in prepared]
        limit = self.limits.max_output_tokens
        generated = iter(
            self.engine.generate(
                prompts,
                [limit] * len(prompts),
                self.tokenizer.eos_token_id,
                return_log_probs=self.scores,
            )
        )
        results = []
        for request, windows, prepared in planned:
            parts = []
            for window, (window_request, ids) in zip(windows, prepared, strict=True):
                out = next(generated)
                part = postprocess(
                    self.tokenizer,
                    window_request,
                    out.token_ids,
                    len(ids),
                    limit,
                    out.log_probs if self.scores else None,
                    self.score_method,
                )
                parts.append((window.start, part))
            results.append(merge_windows(request.task, request.text, parts))
        return results
