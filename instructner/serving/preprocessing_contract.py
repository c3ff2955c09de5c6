"""The preprocessing model's tensors: one window per row in, the engine's inputs out.

Inputs TEXT, TASK, LABELS, ENTITIES as :mod:`instructner.serving.requests` reads them (one
window per row). Outputs, named as the engine model's inputs expect them
(:mod:`instructner.serving.engine_contract`): ``INPUT_ID`` INT32 ``[batch, len]`` (prompt
tokens right-padded with ``PAD_ID``), ``REQUEST_INPUT_LEN``, ``REQUEST_OUTPUT_LEN``,
``END_ID``, ``PAD_ID`` INT32 ``[batch, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from instructner.serving.limits import Limits
from instructner.serving.requests import requests_from_inputs
from instructner.serving.tensors import GetInput, int32_column
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.window_steps import preprocess

OUTPUT_NAMES = ("INPUT_ID", "REQUEST_INPUT_LEN", "REQUEST_OUTPUT_LEN", "END_ID", "PAD_ID")
# preprocessing output -> engine input of the same window
ENGINE_INPUTS = {
    "INPUT_ID": "input_ids",
    "REQUEST_INPUT_LEN": "input_lengths",
    "REQUEST_OUTPUT_LEN": "request_output_len",
    "END_ID": "end_id",
    "PAD_ID": "pad_id",
}


def read_prompts(get: GetInput, tokenizer: PromptTokenizer, limits: Limits) -> list[list[int]]:
    """Validate every row's window and return its prompt token ids.

    Raises:
        RequestError: a bad input, or a prompt over the engine's input limit.

    """
    return [
        preprocess(tokenizer, limits, r.text, r.task, r.labels, r.entities)[1]
        for r in requests_from_inputs(get, limits)
    ]


def preprocessing_outputs(
    prompts: Sequence[Sequence[int]], tokenizer: PromptTokenizer, limits: Limits
) -> dict[str, np.ndarray]:
    """Return the output tensors for ``prompts`` (one row each)."""
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
