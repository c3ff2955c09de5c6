"""The engine model's request for one window, as instruction_ner builds it (steps inline).

Column names as the engine model reads them are in :data:`ENGINE_INPUTS`
(:mod:`instructner.serving.engine_contract`): ``INPUT_ID`` INT32 ``[batch, len]`` (prompt
tokens right-padded with ``PAD_ID``) → ``input_ids``, ``REQUEST_INPUT_LEN`` →
``input_lengths``, ``REQUEST_OUTPUT_LEN`` → ``request_output_len``, ``END_ID`` → ``end_id``,
``PAD_ID`` → ``pad_id``, each INT32 ``[batch, 1]``. The tensor names are TensorRT-LLM's, so the
same request reaches the CPU engine model and ``tensorrt_llm``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from instructner.serving.limits import Limits
from instructner.serving.tensors import int32_column
from instructner.serving.tokenizer import PromptTokenizer

OUTPUT_NAMES = ("INPUT_ID", "REQUEST_INPUT_LEN", "REQUEST_OUTPUT_LEN", "END_ID", "PAD_ID")
# request column -> the engine model's input of that name
ENGINE_INPUTS = {
    "INPUT_ID": "input_ids",
    "REQUEST_INPUT_LEN": "input_lengths",
    "REQUEST_OUTPUT_LEN": "request_output_len",
    "END_ID": "end_id",
    "PAD_ID": "pad_id",
}


def engine_inputs(
    prompts: Sequence[Sequence[int]], tokenizer: PromptTokenizer, limits: Limits
) -> dict[str, np.ndarray]:
    """Return the request tensors for ``prompts`` (one row each), by the names above."""
    pad = tokenizer.pad_token_id
    input_id = np.full((len(prompts), max(len(ids) for ids in prompts)), pad, dtype=np.int32)
    for row, ids in enumerate(prompts):
        input_id[row, : len(ids)] = ids
    rows = len(prompts)
    return {
        "INPUT_ID": input_id,
        "REQUEST_INPUT_LEN": int32_column([len(ids) for ids in prompts]),
        "REQUEST_OUTPUT_LEN": int32_column([limits.max_output_tokens] * rows),
        "END_ID": int32_column([tokenizer.eos_token_id] * rows),
        "PAD_ID": int32_column([pad] * rows),
    }
