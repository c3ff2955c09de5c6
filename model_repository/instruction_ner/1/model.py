"""Triton model `instruction_ner`: the public model, a BLS over the pipeline models.

Inputs TEXT (UTF-8), TASK (ner | extract | type; default ner), LABELS (label words; for ner and
type), ENTITIES (entity words; for type), RETURN_SCORES (default true: every entity gets a
score from the engine's token log-probabilities) and MIN_SCORE (drop entities scored below it;
default 0). Outputs RESULT (a serialized
instructner.v1.ExtractionResult with offsets into TEXT) and GENERATED_TEXT. A long document is
split into sentence windows that fit the engine (never truncated; at most max_windows); the
windows go through the pipeline at most max_windows_in_flight at a time, so the engine's
dynamic batcher batches them while other callers' windows still reach it between them; a
request whose caller has gone (cancelled, deadline passed) stops before its next window. The
window results are merged with their offsets shifted back into TEXT.

The `steps` parameter says where the pipeline runs: `embedded` (CPU default) loads the CPU
engine in this model's own process, so a window costs no model call and the windows of all
requests of a dynamic batch share engine batches (instructner.serving.embedded); `inline`
builds prompts and parses answers here and calls the engine model once per window; `models`
calls the preprocessing and postprocessing models around the engine, as the TensorRT-LLM
repository does (three calls per window). All three give the same results.
"""

import asyncio

import numpy as np
import triton_python_backend_utils as pb_utils

from instructner.confidence import DEFAULT_SCORE_METHOD, parse_score_method
from instructner.serving import triton_glue
from instructner.serving.embedded import Documents, run_batch
from instructner.serving.engine_contract import ENGINE_PARAMETERS, engine_from_parameters
from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits
from instructner.serving.pipeline import plan_request, prepare_planned_window
from instructner.serving.postprocessing_contract import (
    FROM_ENGINE,
    answer_rows,
    postprocessing_outputs,
)
from instructner.serving.preprocessing_contract import ENGINE_INPUTS, preprocessing_outputs
from instructner.serving.preprocessing_contract import OUTPUT_NAMES as PREPROCESSING_OUTPUTS
from instructner.serving.protos import ExtractionResult
from instructner.serving.requests import requests_from_inputs, score_options_from_inputs
from instructner.serving.results import keep_confident, merge_windows
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.triton_glue import Cancelled, StepFailed
from instructner.trained_tasks import parse_served_tasks


def _strings(values):
    return np.array([[v.encode("utf-8") for v in values]], dtype=np.object_).reshape(1, len(values))


class TritonPythonModel:
    """Document windowing, and each window's prompt, engine call and answer parsing."""

    def initialize(self, args):
        """Load the tokenizer (for window sizes), the limits and the step model names."""
        parameters = triton_glue.model_parameters(args)
        self.name = args["model_name"]
        self.tokenizer = PromptTokenizer(parameters["tokenizer_dir"])
        self.limits = Limits.from_parameters(parameters)
        self.served_tasks = parse_served_tasks(parameters.get("served_tasks", "ner,extract,type"))
        self.score_method = parse_score_method(parameters.get("score_method", DEFAULT_SCORE_METHOD))
        self.preprocessing = parameters["preprocessing_model"]
        self.engine = parameters["engine_model"]
        self.postprocessing = parameters["postprocessing_model"]
        self.place = triton_glue.steps_place(parameters)
        self.inline = self.place == "inline"
        self.step_parameters = triton_glue.internal_parameters(triton_glue.internal_key())
        self.embedded = None
        if self.place == "embedded":
            self.engine_batch = int(parameters["engine_batch"])
            self.embedded = engine_from_parameters(
                {key: parameters[f"embedded_{key}"] for key in ENGINE_PARAMETERS}
            )
            pb_utils.Logger.log_info(
                f"{self.name}: embedded {self.embedded.kind} engine from "
                f"{parameters['embedded_engine_dir']}"
            )

    def execute(self, requests):
        """Answer every request of the batch; one response per request.

        Embedded, the responses come back at once, on the stub's main thread. The other places
        call step models and return a coroutine, which the stub runs on its event-loop thread:
        a coroutine for the embedded place too would cost every request two thread hand-offs
        (main thread to loop and back) and their GIL waits.
        """
        if self.embedded is not None:
            return self._execute_embedded(requests)
        return self._execute_steps(requests)

    async def _execute_steps(self, requests):
        return list(await asyncio.gather(*(self._respond(r) for r in requests)))

    def _execute_embedded(self, requests):
        batch: list[Documents | BaseException] = []
        for request in requests:
            try:
                get = triton_glue.input_getter(pb_utils, request)
                rows = requests_from_inputs(get, self.limits, self.served_tasks)
                batch.append(Documents(rows, score_options_from_inputs(get, len(rows))))
            except Exception as error:  # noqa: BLE001 - answered as this request's error
                batch.append(error)
        engine = self.embedded
        assert engine is not None  # only called with the engine embedded
        outcomes = run_batch(
            engine,
            self.tokenizer,
            self.limits,
            batch,
            lambda index: requests[index].is_cancelled(),
            self.engine_batch,
            self.score_method,
        )
        responses = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                responses.append(triton_glue.error_response(pb_utils, self.name, outcome))
                continue
            responses.append(triton_glue.success(pb_utils, postprocessing_outputs(outcome)))
        return responses

    def finalize(self):
        """Release the embedded engine while the stub is still running."""
        if self.embedded is not None:
            self.embedded.close()

    async def _respond(self, request):
        try:
            return triton_glue.success(pb_utils, await self._handle(request))
        except Exception as error:  # noqa: BLE001 - one bad request must not fail its batch
            return triton_glue.error_response(pb_utils, self.name, error)

    async def _handle(self, request):
        get = triton_glue.input_getter(pb_utils, request)
        documents = requests_from_inputs(get, self.limits, self.served_tasks)
        options = score_options_from_inputs(get, len(documents))
        results = await asyncio.gather(
            *(self._document(request, d, o) for d, o in zip(documents, options, strict=True))
        )
        return postprocessing_outputs(results)

    async def _document(self, request, document, options):
        windows = plan_request(document, self.tokenizer, self.limits)
        parts: list[ExtractionResult | None] = [None] * len(windows)
        pending = iter(range(len(windows)))
        failures: list[Exception] = []

        async def worker():
            # Workers take the next window until none is left, another worker failed, or the
            # caller has gone: an abandoned document stops after the windows in flight.
            for index in pending:
                if failures:
                    return
                if request.is_cancelled():
                    failures.append(
                        Cancelled(
                            f"request cancelled by the caller after {index} of {len(windows)} "
                            "windows; the rest were not run"
                        )
                    )
                    return
                try:
                    parts[index] = await self._window(document, windows[index], options.scores)
                except Exception as error:  # noqa: BLE001 - the first failure answers
                    failures.append(error)
                    return

        workers = min(len(windows), self.limits.max_windows_in_flight)
        await asyncio.gather(*(worker() for _ in range(workers)))
        if failures:
            raise failures[0]
        done = [(w.start, p) for w, p in zip(windows, parts, strict=True) if p is not None]
        if len(done) != len(windows):
            raise RuntimeError(f"{len(windows) - len(done)} windows have no result")
        merged = merge_windows(document.task, document.text, done)
        return keep_confident(merged, options.min_score)

    async def _window(self, document, window, scores):
        where = f"window {window.start}-{window.end}"
        if self.inline:
            part, ids = prepare_planned_window(self.tokenizer, self.limits, document, window)
            pre = preprocessing_outputs([ids], self.tokenizer, self.limits)
        else:
            query = {"TEXT": _strings([window.text]), "TASK": _strings([document.task])}
            if document.labels:
                query["LABELS"] = _strings(document.labels)
            if window.entities:
                query["ENTITIES"] = _strings(window.entities)
            pre = await self._call(self.preprocessing, query, PREPROCESSING_OUTPUTS, where)
        engine_inputs = {ENGINE_INPUTS[name]: pre[name] for name in ENGINE_INPUTS}
        engine_outputs = ["output_ids", "sequence_length"]
        if scores:
            engine_inputs["return_log_probs"] = np.ones((1, 1), dtype=np.bool_)
            engine_outputs.append("output_log_probs")
        engine = await self._call(self.engine, engine_inputs, engine_outputs, where)
        answer = {
            **{FROM_ENGINE[name]: engine[name] for name in engine_outputs},
            "REQUEST_INPUT_LEN": pre["REQUEST_INPUT_LEN"],
            "REQUEST_OUTPUT_LEN": pre["REQUEST_OUTPUT_LEN"],
        }
        if self.inline:
            try:
                (row,) = answer_rows([part], answer.get, self.limits)
            except RequestError as error:  # as the postprocessing model would refuse it
                raise StepFailed(f"model {self.engine} answered {where} with {error}") from error
            return row.result(self.tokenizer, self.score_method)
        post = await self._call(self.postprocessing, {**query, **answer}, ["RESULT"], where)
        return ExtractionResult.FromString(post["RESULT"][0, 0])

    async def _call(self, model, inputs, outputs, where):
        return await triton_glue.call_step(
            pb_utils, model, inputs, outputs, where, self.step_parameters
        )
