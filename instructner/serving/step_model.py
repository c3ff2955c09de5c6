"""The shared body of the two step models, ``preprocessing`` and ``postprocessing``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from instructner.serving import triton_glue
from instructner.serving.limits import Limits
from instructner.serving.tensors import GetInput
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.triton_glue import Outputs


class StepModel:
    """A Triton python model answering one response per request with :meth:`handle`.

    It reads the tokenizer and the limits from its model config and answers only callers that
    carry the internal key (instruction_ner). A subclass sets ``pb_utils`` to the python
    backend's module and implements :meth:`handle`; a bad request gets INVALID_ARG alone.
    """

    pb_utils: Any = None

    def initialize(self, args: Mapping[str, str]) -> None:
        """Load the tokenizer and the limits named in the model config."""
        parameters = triton_glue.model_parameters(args)
        self.name = args["model_name"]
        self.tokenizer = PromptTokenizer(parameters["tokenizer_dir"])
        self.limits = Limits.from_parameters(parameters)
        self.internal_key = triton_glue.internal_key()

    def execute(self, requests: Sequence[Any]) -> list[Any]:
        """Return one response per request."""
        return [
            triton_glue.respond(self.pb_utils, self.name, r, self._handle, self.internal_key)
            for r in requests
        ]

    def _handle(self, request: Any) -> Outputs:
        return self.handle(triton_glue.input_getter(self.pb_utils, request))

    def handle(self, get: GetInput) -> Outputs:
        """Return the output tensors of one request whose inputs ``get`` reads."""
        raise NotImplementedError
