"""Triton model `preprocessing`: validate a request, build its prompt, tokenize it.

Inputs TEXT, TASK, LABELS, ENTITIES (as `instruction_ner`, one window per row); outputs the
engine's inputs: INPUT_ID (right-padded with PAD_ID), REQUEST_INPUT_LEN, REQUEST_OUTPUT_LEN,
END_ID, PAD_ID. The logic lives in instructner.serving.
"""

import numpy as np
import triton_python_backend_utils as pb_utils

from instructner.serving import triton_glue
from instructner.serving.limits import Limits
from instructner.serving.pipeline import preprocess
from instructner.serving.requests import requests_from_inputs
from instructner.serving.tensors import int32_column
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
        rows = [
            preprocess(self.tokenizer, self.limits, r.text, r.task, r.labels, r.entities)[1]
            for r in requests_from_inputs(get, self.limits)
        ]
        pad = self.tokenizer.pad_token_id
        input_id = np.full((len(rows), max(len(ids) for ids in rows)), pad, dtype=np.int32)
        for row, ids in enumerate(rows):
            input_id[row, : len(ids)] = ids
        return {
            "INPUT_ID": input_id,
            "REQUEST_INPUT_LEN": int32_column([len(ids) for ids in rows]),
            "REQUEST_OUTPUT_LEN": int32_column([self.limits.max_output_tokens] * len(rows)),
            "END_ID": int32_column([self.tokenizer.eos_token_id] * len(rows)),
            "PAD_ID": int32_column([pad] * len(rows)),
        }
