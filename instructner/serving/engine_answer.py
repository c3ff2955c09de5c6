"""The engine model's answer for one window, checked and parsed (steps inline).

``answer_rows`` reads the answer by the column names of :data:`FROM_ENGINE`: ``TOKENS_BATCH``
INT32 ``[batch, beams, len]`` and ``SEQUENCE_LENGTH`` INT32 ``[batch, beams]`` (the engine's
``output_ids`` and ``sequence_length``; beam 0 is read), ``REQUEST_INPUT_LEN`` /
``REQUEST_OUTPUT_LEN`` INT32 ``[batch, 1]`` for the result's token counts, and
``OUTPUT_LOG_PROBS`` FP32 ``[batch, beams, len]`` (the engine's ``output_log_probs``) for the
entities' scores. The answer comes from another model, so it is checked as a direct caller's
would be: no longer than the engine may generate, at most 8 beams. ``result_tensors`` writes
``instruction_ner``'s outputs: ``RESULT`` (a serialized ``instructner.v1.ExtractionResult``
per row, offsets into TEXT) and ``GENERATED_TEXT``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits
from instructner.serving.protos import ExtractionResult
from instructner.serving.requests import ExtractionRequest
from instructner.serving.tensors import (
    GetInput,
    bytes_tensor,
    int_per_row,
    log_probs_per_row,
    row_log_probs,
    string_tensor,
)
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.window_steps import postprocess

OUTPUT_NAMES = ("RESULT", "GENERATED_TEXT")
MAX_BEAMS = 8
# engine output -> answer column of the same window
FROM_ENGINE = {
    "output_ids": "TOKENS_BATCH",
    "sequence_length": "SEQUENCE_LENGTH",
    "output_log_probs": "OUTPUT_LOG_PROBS",
}


@dataclass(frozen=True)
class AnswerRow:
    """One window with the engine's answer for it."""

    window: ExtractionRequest
    token_ids: list[int]
    input_tokens: int
    request_output_len: int | None
    log_probs: list[float] | None

    def result(self, tokenizer: PromptTokenizer, score_method: str) -> ExtractionResult:
        """Return the window's parsed result (:func:`instructner.serving.window_steps.postprocess`).

        Its entities are scored by the formula ``score_method``.
        """
        return postprocess(
            tokenizer,
            self.window,
            self.token_ids,
            self.input_tokens,
            self.request_output_len,
            self.log_probs,
            score_method,
        )


def answer_rows(
    windows: Sequence[ExtractionRequest], get: GetInput, limits: Limits
) -> list[AnswerRow]:
    """Check the engine's answer tensors for already validated ``windows`` (one row each).

    ``get`` returns the answer tensors by their column names (``TOKENS_BATCH`` …).

    Raises:
        RequestError: a missing or malformed tensor, or an answer over the engine's limits.

    """
    batch = len(windows)
    tokens = get("TOKENS_BATCH")
    lengths = get("SEQUENCE_LENGTH")
    if tokens is None or lengths is None:
        raise RequestError("TOKENS_BATCH", "and SEQUENCE_LENGTH are required")
    if tokens.ndim != 3 or tokens.shape[0] != batch or lengths.shape[:1] != (batch,):
        raise RequestError(
            "TOKENS_BATCH",
            f"expected shape [{batch}, beams, len] with SEQUENCE_LENGTH [{batch}, beams], "
            f"got {list(tokens.shape)} and {list(lengths.shape)}",
        )
    # The GPU engine may count the decoder start token: +1.
    longest = limits.max_output_tokens + 1
    width = limits.max_input_tokens + longest
    if tokens.shape[1] > MAX_BEAMS or tokens.shape[2] > width:
        raise RequestError(
            "TOKENS_BATCH",
            f"shape {list(tokens.shape)} is over the limits of {MAX_BEAMS} beams and "
            f"{width} tokens per row",
        )
    input_lens = get("REQUEST_INPUT_LEN")
    output_lens = get("REQUEST_OUTPUT_LEN")
    inputs = (
        [0] * batch if input_lens is None else int_per_row("REQUEST_INPUT_LEN", input_lens, batch)
    )
    output_limits: Sequence[int | None] = (
        [None] * batch
        if output_lens is None
        else int_per_row("REQUEST_OUTPUT_LEN", output_lens, batch)
    )
    log_probs = get("OUTPUT_LOG_PROBS")
    if log_probs is not None:
        log_probs = log_probs_per_row("OUTPUT_LOG_PROBS", log_probs, tokens.shape, width)
    rows = []
    for row, window in enumerate(windows):
        length = int(lengths.reshape(batch, -1)[row, 0])  # beam 0: greedy decoding
        if not 0 <= length <= min(longest, tokens.shape[2]):
            raise RequestError(
                "SEQUENCE_LENGTH",
                f"row {row} is {length}, expected 0..{min(longest, tokens.shape[2])} (the "
                "engine's output limit and the width of TOKENS_BATCH)",
            )
        scores = (
            None
            if log_probs is None
            else row_log_probs("OUTPUT_LOG_PROBS", log_probs[row], row, length)
        )
        rows.append(
            AnswerRow(
                window,
                [int(t) for t in tokens[row, 0, :length]],
                inputs[row],
                output_limits[row],
                scores,
            )
        )
    return rows


def result_tensors(results: Sequence[ExtractionResult]) -> dict[str, np.ndarray]:
    """Return the output tensors for one result per row."""
    return {
        "RESULT": bytes_tensor([r.SerializeToString() for r in results]),
        "GENERATED_TEXT": string_tensor([r.generated_text for r in results]),
    }
