"""Triton model `postprocessing`: detokenize the engine's answer and parse it into spans.

Inputs TOKENS_BATCH (the engine's output_ids), SEQUENCE_LENGTH, and the window's TEXT, TASK,
LABELS, ENTITIES; optional REQUEST_INPUT_LEN / REQUEST_OUTPUT_LEN for the result's token counts
and OUTPUT_LOG_PROBS (the engine's output_log_probs, aligned with TOKENS_BATCH) for the
entities' scores.
Outputs RESULT (a serialized instructner.v1.ExtractionResult, offsets into TEXT) and
GENERATED_TEXT. The logic lives in instructner.serving.
"""

import triton_python_backend_utils as pb_utils

from instructner.serving import triton_glue
from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits
from instructner.serving.pipeline import postprocess
from instructner.serving.requests import requests_from_inputs
from instructner.serving.tensors import (
    bytes_tensor,
    int_per_row,
    log_probs_per_row,
    row_log_probs,
    string_tensor,
)
from instructner.serving.tokenizer import PromptTokenizer


class TritonPythonModel:
    """Answer parsing for the engine's output."""

    def initialize(self, args):
        """Load the tokenizer and the limits named in the model config."""
        parameters = triton_glue.model_parameters(args)
        self.tokenizer = PromptTokenizer(parameters["tokenizer_dir"])
        self.limits = Limits.from_parameters(parameters)
        self.internal_key = triton_glue.internal_key()

    def execute(self, requests):
        """Return one response per request; a bad request gets INVALID_ARG."""
        return [
            triton_glue.respond(
                pb_utils, "postprocessing", request, self._handle, self.internal_key
            )
            for request in requests
        ]

    def _handle(self, request):
        get = triton_glue.input_getter(pb_utils, request)
        windows = requests_from_inputs(get, self.limits)
        batch = len(windows)
        tokens = get("TOKENS_BATCH")
        lengths = get("SEQUENCE_LENGTH")
        if tokens is None or lengths is None:
            raise RequestError("TOKENS_BATCH", "and SEQUENCE_LENGTH are required")
        if tokens.ndim != 3 or tokens.shape[0] != batch or lengths.shape[:1] != (batch,):
            raise RequestError(
                "TOKENS_BATCH",
                f"expected shape [{batch}, beams, len] with SEQUENCE_LENGTH [{batch}, beams], "
                f"got {list(tokens.shape)} and {list(lengths.shape)}",
            )
        # Its own bounds: a direct caller cannot hand the parser a longer answer than the
        # engine may generate (the GPU engine may count the decoder start token: +1).
        longest = self.limits.max_output_tokens + 1
        if tokens.shape[1] > 8 or tokens.shape[2] > self.limits.max_input_tokens + longest:
            raise RequestError(
                "TOKENS_BATCH",
                f"shape {list(tokens.shape)} is over the limits of 8 beams and "
                f"{self.limits.max_input_tokens + longest} tokens per row",
            )
        input_lens = get("REQUEST_INPUT_LEN")
        output_lens = get("REQUEST_OUTPUT_LEN")
        inputs = (
            [0] * batch
            if input_lens is None
            else int_per_row("REQUEST_INPUT_LEN", input_lens, batch)
        )
        limits = (
            [None] * batch
            if output_lens is None
            else int_per_row("REQUEST_OUTPUT_LEN", output_lens, batch)
        )
        log_probs = get("OUTPUT_LOG_PROBS")
        if log_probs is not None:
            log_probs = log_probs_per_row(
                "OUTPUT_LOG_PROBS",
                log_probs,
                tokens.shape,
                self.limits.max_input_tokens + longest,
            )
        results = []
        for row, window in enumerate(windows):
            length = int(lengths.reshape(batch, -1)[row, 0])  # beam 0: greedy decoding
            if not 0 <= length <= min(longest, tokens.shape[2]):
                raise RequestError(
                    "SEQUENCE_LENGTH",
                    f"row {row} is {length}, expected 0..{min(longest, tokens.shape[2])} (the "
                    "engine's output limit and the width of TOKENS_BATCH)",
                )
            ids = [int(t) for t in tokens[row, 0, :length]]
            scores = (
                None
                if log_probs is None
                else row_log_probs("OUTPUT_LOG_PROBS", log_probs[row], row, length)
            )
            results.append(
                postprocess(self.tokenizer, window, ids, inputs[row], limits[row], scores)
            )
        return {
            "RESULT": bytes_tensor([r.SerializeToString() for r in results]),
            "GENERATED_TEXT": string_tensor([r.generated_text for r in results]),
        }
