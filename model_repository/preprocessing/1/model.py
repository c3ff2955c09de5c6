"""Triton model `preprocessing`: validate a request, build its prompt, tokenize it.

Inputs TEXT, TASK, LABELS, ENTITIES (as `instruction_ner`, one window per row); outputs the
engine's inputs: INPUT_ID (right-padded with PAD_ID), REQUEST_INPUT_LEN, REQUEST_OUTPUT_LEN,
END_ID, PAD_ID (instructner.serving.preprocessing_contract).
"""

import triton_python_backend_utils as pb_utils

from instructner.serving import triton_glue
from instructner.serving.limits import Limits
from instructner.serving.preprocessing_contract import preprocessing_outputs, read_prompts
from instructner.serving.tokenizer import PromptTokenizer


class TritonPythonModel:
    """Prompt building and tokenization for the engine."""

    def initialize(self, args):
        """Load the tokenizer and the limits named in the model config."""
        parameters = triton_glue.model_parameters(args)
        self.tokenizer = PromptTokenizer(parameters["tokenizer_dir"])
        self.limits = Limits.from_parameters(parameters)
        self.internal_key = triton_glue.internal_key()

    def execute(self, requests):
        """Return one response per request; a bad request gets INVALID_ARG."""
        return [
            triton_glue.respond(pb_utils, "preprocessing", request, self._handle, self.internal_key)
            for request in requests
        ]

    def _handle(self, request):
        get = triton_glue.input_getter(pb_utils, request)
        prompts = read_prompts(get, self.tokenizer, self.limits)
        return preprocessing_outputs(prompts, self.tokenizer, self.limits)
