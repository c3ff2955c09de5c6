"""Triton model `postprocessing`: detokenize the engine's answer and parse it into spans.

Inputs TOKENS_BATCH (the engine's output_ids), SEQUENCE_LENGTH, and the window's TEXT, TASK,
LABELS, ENTITIES; optional REQUEST_INPUT_LEN / REQUEST_OUTPUT_LEN for the result's token counts
and OUTPUT_LOG_PROBS (the engine's output_log_probs, aligned with TOKENS_BATCH) for the
entities' scores.
Outputs RESULT (a serialized instructner.v1.ExtractionResult, offsets into TEXT) and
GENERATED_TEXT (instructner.serving.postprocessing_contract).
"""

import triton_python_backend_utils as pb_utils

from instructner.serving import triton_glue
from instructner.serving.limits import Limits
from instructner.serving.pipeline import postprocess
from instructner.serving.postprocessing_contract import postprocessing_outputs, read_answers
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
        results = [
            postprocess(
                self.tokenizer,
                row.window,
                row.token_ids,
                row.input_tokens,
                row.request_output_len,
                row.log_probs,
            )
            for row in read_answers(get, self.limits)
        ]
        return postprocessing_outputs(results)
