"""Triton model `postprocessing`: detokenize the engine's answer and parse it into spans.

Inputs TOKENS_BATCH (the engine's output_ids), SEQUENCE_LENGTH, and the window's TEXT, TASK,
LABELS, ENTITIES; optional REQUEST_INPUT_LEN / REQUEST_OUTPUT_LEN for the result's token counts
and OUTPUT_LOG_PROBS (the engine's output_log_probs, aligned with TOKENS_BATCH) for the
entities' scores.
Outputs RESULT (a serialized instructner.v1.ExtractionResult, offsets into TEXT) and
GENERATED_TEXT (instructner.serving.postprocessing_contract). Called by `instruction_ner` when
its `steps` parameter is `models` (the GPU repository).
"""

import triton_python_backend_utils as pb_utils

from instructner.serving.postprocessing_contract import postprocessing_outputs, read_answers
from instructner.serving.step_model import StepModel


class TritonPythonModel(StepModel):
    """Answer parsing for the engine's output."""

    pb_utils = pb_utils

    def handle(self, get):
        """Return one parsed result per row."""
        rows = read_answers(get, self.limits)
        return postprocessing_outputs([row.result(self.tokenizer) for row in rows])
