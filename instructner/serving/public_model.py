"""What ``instruction_ner`` does around the orchestrator, with ``pb_utils`` passed in.

The Triton model reads a batch of requests (:func:`read_batch`), runs it through
:mod:`instructner.serving.orchestrator` with the window step its ``steps`` parameter names
(:func:`load_public_model`), and answers one response per request (:func:`responses`). The steps:

- ``embedded``: the CPU engine in the model's own process (:class:`EngineStep`): a window
  costs no model call and the windows of a whole dynamic batch share engine batches of at
  most ``engine_batch``;
- ``inline``: one BLS call to the engine model per window (the GPU layout: the engine model
  is then TensorRT-LLM's ``tensorrt_llm`` or CTranslate2 on CUDA).

Prompts are built and answers parsed here in both.

With the BLS steps, each window is its own chunk and at most ``max_windows_in_flight`` windows
per request of the batch are in flight; the next starts as soon as one finishes, so the
engine's dynamic batcher batches the windows in flight while other callers' windows still
reach its queue between them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from instructner.method.confidence import DEFAULT_SCORE_METHOD, parse_score_method
from instructner.method.trained_tasks import parse_served_tasks
from instructner.serving import triton_glue
from instructner.serving.engine import Engine
from instructner.serving.engine_answer import FROM_ENGINE, answer_rows, result_tensors
from instructner.serving.engine_contract import ENGINE_PARAMETERS, engine_from_parameters
from instructner.serving.engine_request import ENGINE_INPUTS, engine_inputs
from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits
from instructner.serving.orchestrator import (
    BatchRun,
    Documents,
    EngineStep,
    RequestOutcome,
    WindowJob,
    WindowOutcome,
    run_batch,
    run_batch_async,
)
from instructner.serving.protos import ExtractionResult
from instructner.serving.requests import requests_from_inputs, score_options_from_inputs
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.triton_glue import StepFailed


@dataclass
class BlsStep:
    """The window step through Triton: one call to the engine model per window."""

    pb_utils: Any
    tokenizer: PromptTokenizer
    limits: Limits
    engine_model: str
    parameters: Mapping[str, str]  # request parameters of every call (the internal key)
    score_method: str = DEFAULT_SCORE_METHOD

    async def __call__(self, jobs: Sequence[WindowJob]) -> list[WindowOutcome]:
        """Run every window of the chunk at once; each gets its result or its error."""
        return list(await asyncio.gather(*(self._outcome(job) for job in jobs)))

    async def _outcome(self, job: WindowJob) -> WindowOutcome:
        try:
            return await self._window(job)
        except Exception as error:  # noqa: BLE001 - ends this window's request only
            return error

    async def _window(self, job: WindowJob) -> ExtractionResult:
        pre = engine_inputs([job.ids], self.tokenizer, self.limits)
        inputs = {ENGINE_INPUTS[name]: pre[name] for name in ENGINE_INPUTS}
        outputs = ["output_ids", "sequence_length"]
        if job.scores:
            inputs["return_log_probs"] = np.ones((1, 1), dtype=np.bool_)
            outputs.append("output_log_probs")
        engine = await triton_glue.call_step(
            self.pb_utils, self.engine_model, inputs, outputs, job.where, self.parameters
        )
        answer = {
            **{FROM_ENGINE[name]: engine[name] for name in outputs},
            "REQUEST_INPUT_LEN": pre["REQUEST_INPUT_LEN"],
            "REQUEST_OUTPUT_LEN": pre["REQUEST_OUTPUT_LEN"],
        }
        try:
            (row,) = answer_rows([job.part], answer.get, self.limits)
        except RequestError as error:  # an answer outside the engine contract
            raise StepFailed(
                f"model {self.engine_model} answered {job.where} with {error}"
            ) from error
        return row.result(self.tokenizer, self.score_method)


@dataclass
class PublicModel:
    """``instruction_ner``: its limits, tasks and window step, and how it answers a batch."""

    pb_utils: Any
    name: str
    tokenizer: PromptTokenizer
    limits: Limits
    served_tasks: tuple[str, ...]
    place: str  # triton_glue.STEP_PLACES
    # exactly one of the two steps: the embedded engine, or the BLS calls
    engine_step: EngineStep | None
    bls_step: BlsStep | None
    engine_batch: int = 1  # embedded: windows per engine call

    @property
    def engine(self) -> Engine | None:
        """Return the embedded engine (None with the BLS steps)."""
        return None if self.engine_step is None else self.engine_step.engine

    def execute(self, requests: Sequence[Any]) -> list[Any] | Coroutine[Any, Any, list[Any]]:
        """Answer a batch: the responses, or (BLS steps) a coroutine for the stub's loop.

        Embedded, the responses come back at once, on the stub's main thread: a coroutine
        would cost every request two thread hand-offs (main thread to loop and back) and
        their GIL waits.
        """
        run = self.batch_run(read_batch(self.pb_utils, requests, self))

        def cancelled(index: int) -> bool:
            return bool(requests[index].is_cancelled())

        if self.engine_step is not None:
            return responses(self.pb_utils, self.name, run_batch(self.engine_step, run, cancelled))
        assert self.bls_step is not None
        # one window per chunk, max_windows_in_flight per request of the batch in flight
        in_flight = self.limits.max_windows_in_flight * max(1, len(requests))
        return self._answer(run_batch_async(self.bls_step, run, cancelled, in_flight))

    async def _answer(self, outcomes: Awaitable[list[RequestOutcome]]) -> list[Any]:
        return responses(self.pb_utils, self.name, await outcomes)

    def batch_run(self, batch: Sequence[Documents | BaseException]) -> BatchRun:
        """Return the orchestration of one Triton batch, chunked for this model's step."""
        chunk = self.engine_batch if self.engine_step is not None else 1
        return BatchRun(self.tokenizer, self.limits, batch, chunk)


def load_public_model(
    pb_utils: Any, args: Mapping[str, str], log: Callable[[str], None]
) -> PublicModel:
    """Read the model config Triton passes to ``initialize`` and load the window step."""
    parameters = triton_glue.model_parameters(args)
    name = args["model_name"]
    tokenizer = PromptTokenizer(parameters["tokenizer_dir"])
    limits = Limits.from_parameters(parameters)
    served = parse_served_tasks(parameters.get("served_tasks", "ner,extract,type"))
    score_method = parse_score_method(parameters.get("score_method", DEFAULT_SCORE_METHOD))
    place = triton_glue.steps_place(parameters)
    common = (pb_utils, name, tokenizer, limits, served, place)
    if place == "embedded":
        engine = engine_from_parameters(
            {key: parameters[f"embedded_{key}"] for key in ENGINE_PARAMETERS}
        )
        log(f"{name}: embedded {engine.kind} engine from {parameters['embedded_engine_dir']}")
        step = EngineStep(engine, tokenizer, limits, score_method)
        return PublicModel(*common, step, None, int(parameters["engine_batch"]))
    bls = BlsStep(
        pb_utils,
        tokenizer,
        limits,
        parameters["engine_model"],
        triton_glue.internal_parameters(triton_glue.internal_key()),
        score_method,
    )
    return PublicModel(*common, None, bls)


def read_batch(
    pb_utils: Any, requests: Sequence[Any], model: PublicModel
) -> list[Documents | BaseException]:
    """Read and validate every request; a bad one becomes its error (answered alone)."""
    batch: list[Documents | BaseException] = []
    for request in requests:
        try:
            get = triton_glue.input_getter(pb_utils, request)
            rows = requests_from_inputs(get, model.limits, model.served_tasks)
            batch.append(Documents(rows, score_options_from_inputs(get, len(rows))))
        except Exception as error:  # noqa: BLE001 - answered as this request's error
            batch.append(error)
    return batch


def responses(pb_utils: Any, model: str, outcomes: Sequence[RequestOutcome]) -> list[Any]:
    """Return one response per request: its results, or its error mapped to a Triton code."""
    return [
        triton_glue.error_response(pb_utils, model, outcome)
        if isinstance(outcome, BaseException)
        else triton_glue.success(pb_utils, result_tensors(outcome))
        for outcome in outcomes
    ]
