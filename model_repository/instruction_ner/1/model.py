"""Triton model `instruction_ner`: the public model.

Inputs TEXT (UTF-8), TASK (ner | extract | type; default ner), LABELS (label words; for ner and
type), ENTITIES (entity words; for type), RETURN_SCORES (default true: every entity gets a
score from the engine's token log-probabilities) and MIN_SCORE (drop entities scored below it;
default 0). Outputs RESULT (a serialized instructner.v1.ExtractionResult with offsets into
TEXT) and GENERATED_TEXT. A long document is split into sentence windows that fit the engine
(never truncated; at most max_windows); a request whose caller has gone (cancelled, deadline
passed) stops before its next chunk of windows.

The orchestration is instructner.serving.orchestrator; the `steps` parameter picks its window
step (instructner.serving.public_model): `embedded` (CPU default: the engine in this process),
`inline` (one engine model call per window) or `models` (the preprocessing, engine and
postprocessing models, as around TensorRT-LLM). All three give the same results.
"""

import triton_python_backend_utils as pb_utils

from instructner.serving.public_model import load_public_model


class TritonPythonModel:
    """Reads the requests, runs the orchestrator, answers each request."""

    def initialize(self, args):
        """Load the tokenizer, the limits and the window step named in the model config."""
        self.model = load_public_model(pb_utils, args, pb_utils.Logger.log_info)

    def execute(self, requests):
        """One response per request (embedded: at once; BLS steps: a coroutine)."""
        return self.model.execute(requests)

    def finalize(self):
        """Release the embedded engine while the stub is still running."""
        if self.model.engine is not None:
            self.model.engine.close()
