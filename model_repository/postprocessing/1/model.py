"""Triton model `postprocessing`: detokenize the engine's answer and parse it into spans.

Inputs TOKENS_BATCH (the engine's output_ids), SEQUENCE_LENGTH, and the window's TEXT, TASK,
LABELS, ENTITIES; optional REQUEST_INPUT_LEN / REQUEST_OUTPUT_LEN for the result's token counts
and OUTPUT_LOG_PROBS (the engine's output_log_probs, aligned with TOKENS_BATCH) for the
entities' scores, by the formula of the `score_method` parameter (the model's calibration).
Outputs RESULT (a serialized instructner.v1.ExtractionResult, offsets into TEXT) and
GENERATED_TEXT (instructner.serving.postprocessing_contract). Called by `instruction_ner` when
its `steps` parameter is `models` (the GPU repository).
"""

import triton_python_backend_utils as pb_utils

from instructner.method.confidence import DEFAULT_SCORE_METHOD, parse_score_method
from instructner.serving import triton_glue
from instructner.serving.postprocessing_contract import postprocessing_outputs, read_answers
from instructner.serving.step_model import StepModel


class TritonPythonModel(StepModel):
    """Answer parsing for the engine's output."""

    pb_utils = pb_utils

    def initialize(self, args):
        """Load the tokenizer, the limits and the model's score formula."""
        super().initialize(args)
        self.score_method = parse_score_method(
            triton_glue.model_parameters(args).get("score_method", DEFAULT_SCORE_METHOD)
        )

    def handle(self, get):
        """Return one parsed result per row."""
        rows = read_answers(get, self.limits)
        results = [row.result(self.tokenizer, self.score_method) for row in rows]
        return postprocessing_outputs(results)
