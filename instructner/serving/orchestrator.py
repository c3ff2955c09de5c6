"""The one orchestration of the serving pipeline: requests in, windows through a step, merged.

Every place that serves runs this: ``instruction_ner`` with the CPU engine in its own process
(``steps: embedded``), ``instruction_ner`` calling the engine model (``inline``) or the step
models (``models``) through BLS, and :class:`instructner.serving.pipeline.Pipeline` (the
in-process reference). Only the *window step* differs: it turns a chunk of prepared windows
into window results (:class:`EngineStep` in-process, :mod:`instructner.serving.bls_steps`
through Triton).

:class:`BatchRun` holds the state of one batch and does no I/O. Each request is validated
and planned on its own (a bad one gets its own error); the windows of all valid requests are
sorted by prompt length (less padding) and handed to the step ``chunk_size`` at a time; before
every chunk after the first, each request with windows in it is asked once whether its caller
has gone, and a gone one ends with :class:`Cancelled` (its remaining windows are not run). A
failed window fails only its own request; the others merge their windows with offsets shifted
back into their texts and drop entities scored under their ``min_score``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from instructner.method.confidence import DEFAULT_SCORE_METHOD
from instructner.serving.engine import Engine
from instructner.serving.limits import Limits
from instructner.serving.protos import ExtractionResult
from instructner.serving.requests import ExtractionRequest, ScoreOptions
from instructner.serving.results import keep_confident, merge_windows
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.triton_glue import Cancelled
from instructner.serving.window_steps import plan_request, postprocess, prepare_planned_window

WindowOutcome = ExtractionResult | BaseException
RequestOutcome = list[ExtractionResult] | BaseException


@dataclass(frozen=True)
class Documents:
    """The validated rows of one request with their score options."""

    rows: Sequence[ExtractionRequest]
    options: Sequence[ScoreOptions]


@dataclass(frozen=True)
class WindowJob:
    """One window, prepared for the engine: its own request and its prompt ids."""

    request: int  # index of the request in the batch
    row: int  # row (document) of that request
    index: int  # window of that document
    start: int  # window start in the document text
    part: ExtractionRequest  # the window as a request of its own
    ids: list[int]  # prompt token ids
    scores: bool  # the caller wants entity scores (ask the engine for log-probabilities)

    @property
    def where(self) -> str:
        """Name the window in error messages (its character range in the document)."""
        return f"window {self.start}-{self.start + len(self.part.text)}"


# A window step answers every job of a chunk, in order: its result or the error that ends
# its request. Raising fails every request with a window in the chunk.
WindowStep = Callable[[Sequence[WindowJob]], Sequence[WindowOutcome]]
AsyncWindowStep = Callable[[Sequence[WindowJob]], Awaitable[Sequence[WindowOutcome]]]


@dataclass
class _Request:
    documents: Documents
    # per row, per window: (window start in the row's text, the window's result)
    parts: list[list[tuple[int, ExtractionResult] | None]] = field(default_factory=list)
    error: BaseException | None = None
    started: int = 0  # windows handed to the step

    def planned(self) -> int:
        """Return the number of windows planned for all rows."""
        return sum(len(row) for row in self.parts)


class BatchRun:
    """The state of one batch of requests between the window step's calls (no I/O).

    ``batch`` holds, per request, its validated documents or the error reading them (passed
    through to :meth:`outcomes`).
    """

    def __init__(
        self,
        tokenizer: PromptTokenizer,
        limits: Limits,
        batch: Sequence[Documents | BaseException],
        chunk_size: int,
    ) -> None:
        """Plan every request's windows and encode their prompts."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.chunk_size = chunk_size
        self._states: list[_Request | None] = []
        self._outcomes: list[RequestOutcome | None] = [None] * len(batch)
        self._pending: list[WindowJob] = []
        self._taken = 0
        for index, item in enumerate(batch):
            state = None
            if isinstance(item, BaseException):
                self._outcomes[index] = item
            else:
                try:
                    state = self._plan(index, item, tokenizer, limits)
                except Exception as error:  # noqa: BLE001 - this request fails alone
                    self._outcomes[index] = error
            self._states.append(state)
        self._pending.sort(key=lambda job: len(job.ids))

    def _plan(
        self, index: int, documents: Documents, tokenizer: PromptTokenizer, limits: Limits
    ) -> _Request:
        state = _Request(documents)
        jobs = []
        for row, (document, options) in enumerate(
            zip(documents.rows, documents.options, strict=True)
        ):
            planned = plan_request(document, tokenizer, limits)
            state.parts.append([None] * len(planned))
            for n, window in enumerate(planned):
                part, ids = prepare_planned_window(tokenizer, limits, document, window)
                jobs.append(WindowJob(index, row, n, window.start, part, ids, options.scores))
        self._pending.extend(jobs)  # only once the whole request is planned
        return state

    def next_chunk(self, is_cancelled: Callable[[int], bool] | None = None) -> list[WindowJob]:
        """Return the next windows to run (at most ``chunk_size``); empty when all are done.

        ``is_cancelled(i)`` says whether request ``i``'s caller has gone; it is asked at most
        once per request and chunk, and not before the first chunk (Triton checked before
        handing the batch over).
        """
        ask = is_cancelled if self._taken else None
        asked: set[int] = set()
        chunk: list[WindowJob] = []
        while self._taken < len(self._pending) and len(chunk) < self.chunk_size:
            job = self._pending[self._taken]
            self._taken += 1
            state = self._states[job.request]
            assert state is not None  # only planned requests have windows
            if state.error is None and ask is not None and job.request not in asked:
                asked.add(job.request)
                if ask(job.request):
                    state.error = Cancelled(
                        f"request cancelled by the caller after {state.started} of "
                        f"{state.planned()} windows; the rest were not run"
                    )
            if state.error is None:
                state.started += 1
                chunk.append(job)
        return chunk

    def complete(self, jobs: Sequence[WindowJob], outcomes: Sequence[WindowOutcome]) -> None:
        """Record the step's outcome for each of ``jobs`` (a chunk from :meth:`next_chunk`)."""
        if len(outcomes) != len(jobs):
            failure = RuntimeError(f"window step returned {len(outcomes)} results for {len(jobs)}")
            outcomes = [failure] * len(jobs)
        for job, outcome in zip(jobs, outcomes, strict=True):
            state = self._states[job.request]
            if state is None or state.error is not None:
                continue
            if isinstance(outcome, BaseException):
                state.error = outcome
            else:
                state.parts[job.row][job.index] = (job.start, outcome)

    def fail(self, jobs: Sequence[WindowJob], error: BaseException) -> None:
        """Record that the step failed as a whole for ``jobs``."""
        self.complete(jobs, [error] * len(jobs))

    def outcomes(self) -> list[RequestOutcome]:
        """Return, per request, its rows' merged results or the error that ended it."""
        for index, state in enumerate(self._states):
            if state is None:
                continue
            if state.error is not None:
                self._outcomes[index] = state.error
                continue
            try:
                self._outcomes[index] = _merge(state)
            except Exception as error:  # noqa: BLE001 - this request fails alone
                self._outcomes[index] = error
        return [
            o if o is not None else RuntimeError("request has no result") for o in self._outcomes
        ]


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


def run_batch(
    step: WindowStep, run: BatchRun, is_cancelled: Callable[[int], bool] | None = None
) -> list[RequestOutcome]:
    """Run every window of ``run`` through ``step``, chunk by chunk, on this thread."""
    while jobs := run.next_chunk(is_cancelled):
        try:
            run.complete(jobs, step(jobs))
        except Exception as error:  # noqa: BLE001 - the requests of this chunk fail
            run.fail(jobs, error)
    return run.outcomes()


async def run_batch_async(
    step: AsyncWindowStep,
    run: BatchRun,
    is_cancelled: Callable[[int], bool] | None = None,
    in_flight: int = 1,
) -> list[RequestOutcome]:
    """:func:`run_batch` for a step that awaits other models (BLS), without a barrier.

    At most ``in_flight`` chunks run at once, and the next starts as soon as one finishes, so
    a slow window holds back only itself. Whether a caller has gone is asked as each chunk
    is taken (:meth:`BatchRun.next_chunk`).
    """
    if in_flight < 1:
        raise ValueError(f"in_flight must be at least 1, got {in_flight}")
    running: dict[asyncio.Future[Sequence[WindowOutcome]], Sequence[WindowJob]] = {}
    try:
        while True:
            while len(running) < in_flight and (jobs := run.next_chunk(is_cancelled)):
                running[asyncio.ensure_future(step(jobs))] = jobs
            if not running:
                return run.outcomes()
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                finished = running.pop(task)
                try:
                    run.complete(finished, task.result())
                except Exception as error:  # noqa: BLE001 - the requests of this chunk fail
                    run.fail(finished, error)
    finally:
        for task in running:  # only when this coroutine itself was cancelled or failed
            task.cancel()


@dataclass
class EngineStep:
    """The window step with the engine in this process: one engine call per chunk.

    Entities are scored by the formula ``score_method`` (the model's calibration).
    """

    engine: Engine
    tokenizer: PromptTokenizer
    limits: Limits
    score_method: str = DEFAULT_SCORE_METHOD

    def __call__(self, jobs: Sequence[WindowJob]) -> list[WindowOutcome]:
        """Generate every window's answer in one engine batch and parse each."""
        limit = self.limits.max_output_tokens
        generated = self.engine.generate(
            [job.ids for job in jobs],
            [limit] * len(jobs),
            self.tokenizer.eos_token_id,
            return_log_probs=any(job.scores for job in jobs),
        )
        if len(generated) != len(jobs):
            raise RuntimeError(f"engine returned {len(generated)} answers for {len(jobs)}")
        outcomes: list[WindowOutcome] = []
        for job, out in zip(jobs, generated, strict=True):
            try:
                outcomes.append(
                    postprocess(
                        self.tokenizer,
                        job.part,
                        out.token_ids,
                        len(job.ids),
                        limit,
                        out.log_probs if job.scores else None,
                        self.score_method,
                    )
                )
            except Exception as error:  # noqa: BLE001 - this request fails alone
                outcomes.append(error)
        return outcomes
