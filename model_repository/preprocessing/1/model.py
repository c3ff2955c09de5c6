"""Triton model `preprocessing`: validate a request, build its prompt, tokenize it.

Inputs TEXT, TASK, LABELS, ENTITIES (as `instruction_ner`, one window per row); outputs the
engine's inputs: INPUT_ID (right-padded with PAD_ID), REQUEST_INPUT_LEN, REQUEST_OUTPUT_LEN,
END_ID, PAD_ID (instructner.serving.preprocessing_contract). Called by `instruction_ner` when
its `steps` parameter is `models` (the GPU repository).
"""

import triton_python_backend_utils as pb_utils

from instructner.serving.preprocessing_contract import preprocessing_outputs, read_prompts
from instructner.serving.step_model import StepModel


class TritonPythonModel(StepModel):
    """Prompt building and tokenization for the engine."""

    pb_utils = pb_utils

    def handle(self, get):
        """Return the engine's input tensors for every row's window."""
        prompts = read_prompts(get, self.tokenizer, self.limits)
        return preprocessing_outputs(prompts, self.tokenizer, self.limits)
