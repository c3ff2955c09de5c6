"""The engine model's tensors: those of Triton's TensorRT-LLM backend for encoder-decoders.

Inputs (per request, leading batch dimension): ``input_ids`` INT32 ``[batch, len]`` (the
encoder tokens, right-padded), ``input_lengths`` INT32 ``[batch, 1]``,
``request_output_len`` INT32 ``[batch, 1]``, optional ``end_id`` / ``pad_id`` /
``beam_width`` INT32 ``[batch, 1]``. Outputs: ``output_ids`` INT32 ``[batch, 1, len]`` (beam
dimension 1; generated tokens only, padded with ``end_id``) and ``sequence_length`` INT32
``[batch, 1]``. With the optional ``return_log_probs`` BOOL ``[batch, 1]`` set, ``output_log_probs``
FP32 ``[batch, 1, len]`` holds the natural-log probability of each generated token (aligned with
``output_ids``, padded with 0) and ``cum_log_probs`` FP32 ``[batch, 1]`` their sum; without it
both are zeros, as TensorRT-LLM returns them. As in the TensorRT-LLM backend, the decoder
starts from the model's decoder start token (``pad_id`` for T5); ``pad_id`` is accepted for
the contract, outputs are padded with ``end_id`` (as TensorRT-LLM does), and ``end_id`` stops
generation. So the python CPU engine and a TensorRT-LLM engine are interchangeable behind the
same instruction_ner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from instructner.serving.engine import Engine, Generated, load_engine
from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits
from instructner.serving.tensors import GetInput, batch_size, bool_per_row, int_per_row

INPUT_NAMES = (
    "input_ids",
    "input_lengths",
    "request_output_len",
    "end_id",
    "pad_id",
    "beam_width",
    "return_log_probs",
)
OUTPUT_NAMES = ("output_ids", "sequence_length", "output_log_probs", "cum_log_probs")


ENGINE_PARAMETERS = (
    "engine_kind",
    "engine_dir",
    "compute_type",
    "constrained",
    "inter_threads",
    "intra_threads",
)


def engine_options(parameters: Mapping[str, str]) -> dict[str, Any]:
    """Return the engine constructor's options from model config parameters (strings).

    ``device`` (``cpu`` when absent) and ``device_index`` (the engine model sets it from its
    KIND_GPU instance's device) place a CTranslate2 engine.
    """
    if parameters["engine_kind"] == "ctranslate2":
        return {
            "compute_type": parameters.get("compute_type", "int8"),
            "inter_threads": int(parameters.get("inter_threads", "1")),
            "intra_threads": int(parameters.get("intra_threads", "0")),
            "device": parameters.get("device") or "cpu",
            "device_index": int(parameters.get("device_index") or "0"),
        }
    return {
        "threads": int(parameters.get("intra_threads", "0")),
        "constrained": parameters.get("constrained", "false") == "true",
    }


def engine_from_parameters(parameters: Mapping[str, str]) -> Engine:
    """Load the engine a model config names (``engine_kind``, ``engine_dir`` and options).

    Raises:
        KeyError: ``engine_kind`` or ``engine_dir`` is missing.
        ValueError: an unknown engine kind or a non-integer thread count.

    """
    return load_engine(
        parameters["engine_kind"], parameters["engine_dir"], **engine_options(parameters)
    )


@dataclass(frozen=True)
class EngineCall:
    """One request to the engine model: prompts (unpadded) and how much to generate."""

    input_ids: list[list[int]]
    max_new_tokens: list[int]
    end_id: int
    return_log_probs: bool = False


def _single_value(name: str, values: list[int]) -> int:
    if len(set(values)) != 1:
        raise RequestError(name, f"must be the same for every row of a request, got {values}")
    return values[0]


def read_engine_call(get: GetInput, engine: Engine, limits: Limits) -> EngineCall:
    """Read and check the TensorRT-LLM style input tensors of one request.

    Raises:
        RequestError: a tensor is missing, has the wrong shape or type, or a value is outside
            its range (token ids, lengths over the engine's limits, beam width other than 1).

    """
    ids = get("input_ids")
    if ids is None:
        raise RequestError("input_ids", "is required: the prompt token ids, shape [batch, len]")
    batch = batch_size("input_ids", ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise RequestError(
            "input_ids", f"expected INT32 of shape [batch, len], got {ids.dtype} {list(ids.shape)}"
        )

    def required(name: str) -> list[int]:
        array = get(name)
        if array is None:
            raise RequestError(name, "is required, shape [batch, 1]")
        return int_per_row(name, array, batch)

    def optional(name: str, default: int) -> list[int]:
        array = get(name)
        return [default] * batch if array is None else int_per_row(name, array, batch)

    lengths = required("input_lengths")
    output_lens = required("request_output_len")
    end_id = _single_value("end_id", optional("end_id", engine.eos_token_id))
    optional("pad_id", engine.decoder_start_token_id)  # accepted for the contract, see module doc
    beams = optional("beam_width", 1)
    log_probs = get("return_log_probs")
    return_log_probs = log_probs is not None and any(
        bool_per_row("return_log_probs", log_probs, batch)
    )
    if any(b != 1 for b in beams):
        raise RequestError("beam_width", f"only greedy decoding (1) is served, got {beams}")
    if not 0 <= end_id < engine.vocab_size:
        raise RequestError(
            "end_id", f"must be a token id in 0..{engine.vocab_size - 1}, got {end_id}"
        )

    rows = _prompt_rows(ids, lengths, engine, limits)
    for row, n in enumerate(output_lens):
        if not 1 <= n <= limits.max_output_tokens:
            raise RequestError(
                "request_output_len",
                f"row {row} is {n}, expected 1..{limits.max_output_tokens}",
            )
    return EngineCall(
        input_ids=rows,
        max_new_tokens=output_lens,
        end_id=end_id,
        return_log_probs=return_log_probs,
    )


def _prompt_rows(
    ids: np.ndarray, lengths: list[int], engine: Engine, limits: Limits
) -> list[list[int]]:
    """Return each row's prompt ids, unpadded, after checking its length and token range."""
    rows = []
    for row, length in enumerate(lengths):
        if not 1 <= length <= ids.shape[1]:
            raise RequestError(
                "input_lengths",
                f"row {row} is {length}, expected 1..{ids.shape[1]} (the width of input_ids)",
            )
        if length > limits.max_input_tokens:
            raise RequestError(
                "input_ids",
                f"row {row} has {length} tokens, over the engine's limit of "
                f"{limits.max_input_tokens}",
            )
        tokens = [int(t) for t in ids[row, :length]]
        if min(tokens) < 0 or max(tokens) >= engine.vocab_size:
            raise RequestError(
                "input_ids", f"row {row} holds a token id outside 0..{engine.vocab_size - 1}"
            )
        rows.append(tokens)
    return rows


def run_engine_calls(engine: Engine, calls: Sequence[EngineCall]) -> list[list[Generated]]:
    """Run the calls of several requests as few engine batches as possible (one per end_id).

    Log-probabilities are computed for a batch when any of its calls asks for them (they cost
    little); only those calls return them.
    """
    results: list[list[Generated]] = [[] for _ in calls]
    for end_id in sorted({call.end_id for call in calls}):
        members = [i for i, call in enumerate(calls) if call.end_id == end_id]
        inputs = [ids for i in members for ids in calls[i].input_ids]
        limits = [n for i in members for n in calls[i].max_new_tokens]
        log_probs = any(calls[i].return_log_probs for i in members)
        generated = iter(engine.generate(inputs, limits, end_id, return_log_probs=log_probs))
        for i in members:
            results[i] = [next(generated) for _ in calls[i].input_ids]
    return results


def engine_outputs(
    generated: Sequence[Generated], end_id: int, return_log_probs: bool = False
) -> dict[str, np.ndarray]:
    """Return the engine's output tensors for one request.

    ``output_ids`` ``[batch, 1, len]``, ``sequence_length`` ``[batch, 1]``,
    ``output_log_probs`` ``[batch, 1, len]`` and ``cum_log_probs`` ``[batch, 1]``. The
    log-probability outputs are zeros unless ``return_log_probs`` (TensorRT-LLM's
    behaviour when they are not asked for).
    """
    width = max([len(g.token_ids) for g in generated] + [1])
    output_ids = np.full((len(generated), 1, width), end_id, dtype=np.int32)
    output_log_probs = np.zeros((len(generated), 1, width), dtype=np.float32)
    cum_log_probs = np.zeros((len(generated), 1), dtype=np.float32)
    for row, g in enumerate(generated):
        output_ids[row, 0, : len(g.token_ids)] = g.token_ids
        if return_log_probs and g.log_probs is not None:
            output_log_probs[row, 0, : len(g.log_probs)] = g.log_probs
            cum_log_probs[row, 0] = sum(g.log_probs)
    lengths = np.array([[len(g.token_ids)] for g in generated], dtype=np.int32)
    return {
        "output_ids": output_ids,
        "sequence_length": lengths.reshape(len(generated), 1),
        "output_log_probs": output_log_probs,
        "cum_log_probs": cum_log_probs,
    }
