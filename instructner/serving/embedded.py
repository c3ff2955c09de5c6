"""One Triton batch of ``instruction_ner`` requests with the engine in the same process.

With ``steps: embedded`` (the CPU default) the public model loads the CPU engine itself: a
window costs no call to another model, and the windows of every request in the batch that
Triton's dynamic batcher handed over share engine batches. Each request is validated and
planned on its own (a bad one gets its own error); the windows of all valid requests are
sorted by prompt length (less padding) and generated ``chunk_size`` at a time; before every
chunk after the first, each request with windows in it is asked once whether its caller has
gone, and a gone one is dropped with :class:`Cancelled` (its remaining windows are not run).
An engine failure fails only the requests with a window in that chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from instructner.confidence import DEFAULT_SCORE_METHOD
from instructner.engine import Engine
from instructner.serving.limits import Limits
from instructner.serving.pipeline import plan_request, postprocess, prepare_planned_window
from instructner.serving.protos import ExtractionResult
from instructner.serving.requests import ExtractionRequest, ScoreOptions
from instructner.serving.results import keep_confident, merge_windows
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.triton_glue import Cancelled


@dataclass(frozen=True)
class Documents:
    """The validated rows of one Triton request with their score options."""

    rows: Sequence[ExtractionRequest]
    options: Sequence[ScoreOptions]


@dataclass
class _Window:
    request: int  # index of the Triton request
    row: int  # row (document) of that request
    index: int  # window of that document
    start: int  # window start in the document text
    part: ExtractionRequest
    ids: list[int]
    scores: bool


@dataclass
class _Request:
    documents: Documents
    # per row, per window: (window start in the row's text, the window's result)
    parts: list[list[tuple[int, ExtractionResult] | None]] = field(default_factory=list)
    error: BaseException | None = None

    def progress(self) -> tuple[int, int]:
        """Return (windows answered, windows planned)."""
        rows = self.parts
        return sum(p is not None for row in rows for p in row), sum(len(row) for row in rows)


def _plan(
    index: int, documents: Documents, tokenizer: PromptTokenizer, limits: Limits
) -> tuple[_Request, list[_Window]]:
    state = _Request(documents)
    windows: list[_Window] = []
    for row, (document, options) in enumerate(zip(documents.rows, documents.options, strict=True)):
        planned = plan_request(document, tokenizer, limits)
        state.parts.append([None] * len(planned))
        for n, window in enumerate(planned):
            part, ids = prepare_planned_window(tokenizer, limits, document, window)
            windows.append(_Window(index, row, n, window.start, part, ids, options.scores))
    return state, windows


def run_batch(
    engine: Engine,
    tokenizer: PromptTokenizer,
    limits: Limits,
    batch: Sequence[Documents | BaseException],
    is_cancelled: Callable[[int], bool],
    chunk_size: int,
    score_method: str = DEFAULT_SCORE_METHOD,
) -> list[list[ExtractionResult] | BaseException]:
    """Answer a batch of requests; per request, its rows' results or the error that ends it.

    ``batch`` holds, per Triton request, its validated documents or the error reading them
    (passed through). ``is_cancelled(i)`` says whether request ``i``'s caller has gone.
    Entities are scored by the formula ``score_method`` (the model's calibration).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    states: list[_Request | None] = []
    pending: list[_Window] = []
    outcome: list[list[ExtractionResult] | BaseException | None] = [None] * len(batch)
    for index, item in enumerate(batch):
        if isinstance(item, BaseException):
            outcome[index] = item
            states.append(None)
            continue
        try:
            new_state, windows = _plan(index, item, tokenizer, limits)
        except Exception as error:  # noqa: BLE001 - this request fails alone
            outcome[index] = error
            states.append(None)
            continue
        states.append(new_state)
        pending.extend(windows)
    pending.sort(key=lambda w: len(w.ids))
    done = 0
    while done < len(pending):
        check = is_cancelled if done else None  # Triton checked before handing the batch over
        chunk = _live_chunk(pending[done:], states, check, chunk_size)
        done += chunk.consumed
        if chunk.windows:
            _generate(engine, tokenizer, limits, chunk.windows, states, score_method)
    for index, planned in enumerate(states):
        if planned is None:
            continue
        if planned.error is not None:
            outcome[index] = planned.error
            continue
        try:
            outcome[index] = _merge(planned)
        except Exception as error:  # noqa: BLE001 - this request fails alone
            outcome[index] = error
    return [o if o is not None else RuntimeError("request has no result") for o in outcome]


@dataclass
class _Chunk:
    windows: list[_Window]
    consumed: int


def _live_chunk(
    rest: Sequence[_Window],
    states: Sequence[_Request | None],
    is_cancelled: Callable[[int], bool] | None,
    chunk_size: int,
) -> _Chunk:
    """Take up to ``chunk_size`` windows of requests that are still wanted.

    ``is_cancelled`` (None: do not ask) is asked at most once per request.
    """
    windows: list[_Window] = []
    asked: set[int] = set()
    consumed = 0
    for window in rest:
        if len(windows) == chunk_size:
            break
        consumed += 1
        state = states[window.request]
        assert state is not None  # only planned requests have windows
        if state.error is None and is_cancelled is not None and window.request not in asked:
            asked.add(window.request)
            if is_cancelled(window.request):
                done, planned = state.progress()
                state.error = Cancelled(
                    f"request cancelled by the caller after {done} of {planned} windows; "
                    "the rest were not run"
                )
        if state.error is None:
            windows.append(window)
    return _Chunk(windows, consumed)


def _generate(
    engine: Engine,
    tokenizer: PromptTokenizer,
    limits: Limits,
    windows: Sequence[_Window],
    states: Sequence[_Request | None],
    score_method: str,
) -> None:
    limit = limits.max_output_tokens
    try:
        generated = engine.generate(
            [w.ids for w in windows],
            [limit] * len(windows),
            tokenizer.eos_token_id,
            return_log_probs=any(w.scores for w in windows),
        )
        if len(generated) != len(windows):
            raise RuntimeError(f"engine returned {len(generated)} answers for {len(windows)}")
    except Exception as error:  # noqa: BLE001 - the requests of this chunk fail
        for window in windows:
            state = states[window.request]
            if state is not None and state.error is None:
                state.error = error
        return
    for window, out in zip(windows, generated, strict=True):
        state = states[window.request]
        if state is None or state.error is not None:
            continue
        try:
            result = postprocess(
                tokenizer,
                window.part,
                out.token_ids,
                len(window.ids),
                limit,
                out.log_probs if window.scores else None,
                score_method,
            )
            state.parts[window.row][window.index] = (window.start, result)
        except Exception as error:  # noqa: BLE001 - this request fails alone
            state.error = error


def _merge(state: _Request) -> list[ExtractionResult]:
    results = []
    for document, options, parts in zip(
        state.documents.rows, state.documents.options, state.parts, strict=True
    ):
        done = [p for p in parts if p is not None]
        if len(done) != len(parts):
            raise RuntimeError(f"{len(parts) - len(done)} windows have no result")
        merged = merge_windows(document.task, document.text, done)
        results.append(keep_confident(merged, options.min_score))
    return results
