"""Triton model `engine`: greedy seq2seq generation behind the TensorRT-LLM backend's tensors.

Inputs input_ids, input_lengths, request_output_len, end_id, pad_id, beam_width,
return_log_probs; outputs output_ids, sequence_length, output_log_probs, cum_log_probs (see
instructner.serving.engine_contract). The model config picks the engine: CTranslate2 (on the
CPU, int8 or float32; with device cuda on the GPU of its KIND_GPU instance) or the transformers
reference. All requests of a dynamic batch are decoded together; a bad request gets INVALID_ARG
alone.
"""

import triton_python_backend_utils as pb_utils

from instructner.serving import triton_glue
from instructner.serving.engine_contract import (
    engine_from_parameters,
    engine_outputs,
    read_engine_call,
    run_engine_calls,
)
from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits


class TritonPythonModel:
    """The CPU engine (or the reference) with the TensorRT-LLM tensor contract."""

    def initialize(self, args):
        """Load the engine named in the model config (on this instance's GPU when KIND_GPU)."""
        parameters = triton_glue.model_parameters(args)
        if args.get("model_instance_kind") == "GPU":
            parameters["device_index"] = args["model_instance_device_id"]
        self.name = args["model_name"]
        self.limits = Limits.from_parameters(parameters)
        self.internal_key = triton_glue.internal_key()
        self.engine = engine_from_parameters(parameters)
        pb_utils.Logger.log_info(
            f"{self.name}: {self.engine.kind} engine from {parameters['engine_dir']} "
            f"({getattr(self.engine, 'device', 'cpu')}, {getattr(self.engine, 'compute_type', '')})"
        )

    def execute(self, requests):
        """Decode every valid request of the batch in one engine call."""
        responses = [None] * len(requests)
        calls = {}
        for index, request in enumerate(requests):
            refused = triton_glue.refuse_direct_call(
                pb_utils, self.name, request, self.internal_key
            )
            if refused is not None:
                responses[index] = refused
                continue
            try:
                get = triton_glue.input_getter(pb_utils, request)
                calls[index] = read_engine_call(get, self.engine, self.limits)
            except RequestError as error:
                responses[index] = triton_glue.invalid(pb_utils, error)
            except Exception as error:  # noqa: BLE001 - answer the others
                responses[index] = triton_glue.internal(pb_utils, self.name, error)
        if calls:
            try:
                generated = run_engine_calls(self.engine, list(calls.values()))
                for index, call, out in zip(calls, calls.values(), generated, strict=True):
                    outputs = engine_outputs(out, call.end_id, call.return_log_probs)
                    responses[index] = triton_glue.success(pb_utils, outputs)
            except Exception as error:  # noqa: BLE001 - the whole engine batch failed
                for n, index in enumerate(calls):
                    responses[index] = triton_glue.internal(pb_utils, self.name, error, log=n == 0)
        return responses

    def finalize(self):
        """Release the engine while the stub is still running (not at interpreter exit)."""
        self.engine.close()
