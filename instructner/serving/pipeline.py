"""The whole serving pipeline in one process: the reference the served models must equal.

:class:`Pipeline` runs the orchestration of :mod:`instructner.serving.orchestrator` with the
engine in-process (:class:`~instructner.serving.orchestrator.EngineStep`), as
``instruction_ner`` does with ``steps: embedded``, for tests (served output must equal it),
benchmarks and offline evaluation.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from instructner.method.confidence import DEFAULT_SCORE_METHOD
from instructner.serving.engine import Engine
from instructner.serving.limits import DEFAULT_LIMITS, Limits
from instructner.serving.orchestrator import BatchRun, Documents, EngineStep, run_batch
from instructner.serving.protos import ExtractionResult
from instructner.serving.requests import ScoreOptions, validate_request
from instructner.serving.tokenizer import PromptTokenizer


@dataclass(frozen=True)
class Query:
    """One document to run through :class:`Pipeline` (checked by :func:`validate_request`)."""

    text: str
    task: str | None = None  # None: the default task (ner)
    labels: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    spans: tuple[tuple[int, int], ...] | None = None  # typing by position: one per entity


@dataclass
class Pipeline:
    """Validate, window, prompt, generate, parse and merge in one process.

    ``scores``: ask the engine for log-probabilities and score every entity, by the formula
    ``score_method`` (the served model's:
    :func:`instructner.method.confidence.served_score_method`).
    ``chunk_size``: at most this many windows per engine call (default: all of a call's).
    """

    engine: Engine
    tokenizer: PromptTokenizer
    limits: Limits = DEFAULT_LIMITS
    scores: bool = True
    score_method: str = DEFAULT_SCORE_METHOD
    chunk_size: int = sys.maxsize

    def run(
        self,
        text: str,
        task: str | None = None,
        labels: Sequence[str] = (),
        entities: Sequence[str] = (),
        spans: Sequence[tuple[int, int]] | None = None,
    ) -> ExtractionResult:
        """Return the result for one document (raises RequestError on invalid input)."""
        pinned = None if spans is None else tuple(spans)
        return self.run_many([Query(text, task, tuple(labels), tuple(entities), pinned)])[0]

    def run_many(self, queries: Sequence[Query]) -> list[ExtractionResult]:
        """Return the results of several documents; all their windows share engine batches.

        Raises:
            RequestError: a query is invalid (raised before anything is generated) or splits
                into more windows than the limits allow.

        """
        options = [ScoreOptions(scores=self.scores)]
        batch = [
            Documents(
                [
                    validate_request(
                        q.text, q.task, q.labels, q.entities, self.limits, spans=q.spans
                    )
                ],
                options,
            )
            for q in queries
        ]
        run = BatchRun(self.tokenizer, self.limits, batch, self.chunk_size)
        step = EngineStep(self.engine, self.tokenizer, self.limits, self.score_method)
        results = []
        for outcome in run_batch(step, run):
            if isinstance(outcome, BaseException):
                raise outcome
            results.extend(outcome)
        return results
