"""Model operations of T5 greedy decoding, from the checkpoint's shape and real token counts.

One multiply-add is 2 operations; the bench states them in GOP (10^9 operations) and GOP/s,
the unit of the GEMM peak too. Counted: every matrix product of the encoder and the decoder
(attention projections, the attention scores and their weighted sum, the feed-forward layers,
gated or not) and the lm_head over the whole vocabulary for every decoding step. Left out:
layer norms, softmax, activations, relative position biases and the embedding lookups (each
linear in the tokens and small against the products). The decoder runs one step per generated
token plus one for the end token when an answer ends with it; it attends to its own earlier
positions through a cache (``t`` positions at step ``t``) and to all prompt tokens (their keys
and values computed once per sequence). Padding inside a batch is not counted: the figures are
the useful work, so a padded batch shows up as a lower achieved rate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from instructner.serving.engine import Generated

FORMULA = (
    "2 ops per multiply-add; F = 3 if the feed-forward is gated else 2; I = num_heads * d_kv. "
    "Encoder, n prompt tokens: num_layers * (n * (8 d I + 2 F d d_ff) + 4 n^2 I). "
    "Decoder, S steps (generated tokens + 1 for the end token when produced): "
    "num_decoder_layers * (S * (12 d I + 2 F d d_ff + 4 n I) + 4 I * S(S+1)/2 + 4 n d I) "
    "+ S * 2 d vocab_size (lm_head). Norms, softmax, activations, position biases and padding "
    "are not counted."
)


# One engine call: (prompt tokens, generated tokens kept, whether it decoded its end token)
Call = tuple[int, int, bool]


def call_ended(finished: bool | None, output_limit_reached: bool = False) -> bool:
    """Say whether an engine call decoded its end token (one decoding step more than it kept).

    Every path asks this one function. ``finished`` is the engine's own flag
    (``instructner.serving.engine.Generated.finished``), used wherever the caller has it: an answer
    stopped by the length limit or by loop detection (:mod:`instructner.method.loops`) did not end.
    A served window reports only ``output_limit_reached`` (pass ``finished=None``): there an
    answer stopped by loop detection cannot be told from one that ended and counts as ended,
    one decoding step more than it ran.
    """
    if finished is not None:
        return bool(finished)
    return not output_limit_reached


def engine_call(prompt_tokens: int, generated: Generated) -> Call:
    """Return the :data:`Call` of one in-process engine answer."""
    return (prompt_tokens, len(generated.token_ids), call_ended(generated.finished))


def window_call(window: Any) -> Call:
    """Return the :data:`Call` of one served window (a window of an ``ExtractionResult``)."""
    return (
        int(window.input_tokens),
        int(window.output_tokens),
        call_ended(None, bool(window.output_limit_reached)),
    )


@dataclass(frozen=True)
class ModelShape:
    """The T5 dimensions that set the cost of one call."""

    d_model: int
    d_ff: int
    num_layers: int
    num_decoder_layers: int
    num_heads: int
    d_kv: int
    vocab_size: int
    gated: bool

    @property
    def inner(self) -> int:
        """Width of the attention projections (heads times key size)."""
        return self.num_heads * self.d_kv

    @property
    def ffn_matrices(self) -> int:
        """Matrices of one feed-forward block: 3 when gated (wi_0, wi_1, wo), else 2."""
        return 3 if self.gated else 2

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelShape:
        """Read a Hugging Face T5 ``config.json`` dict (decoder layers default to encoder's).

        Raises:
            KeyError: a dimension is missing.

        """
        projection = str(config.get("feed_forward_proj", "relu"))
        gated = bool(config.get("is_gated_act", projection.startswith("gated-")))
        decoder_layers = config.get("num_decoder_layers")
        return cls(
            d_model=int(config["d_model"]),
            d_ff=int(config["d_ff"]),
            num_layers=int(config["num_layers"]),
            num_decoder_layers=int(
                config["num_layers"] if decoder_layers is None else decoder_layers
            ),
            num_heads=int(config["num_heads"]),
            d_kv=int(config["d_kv"]),
            vocab_size=int(config["vocab_size"]),
            gated=gated,
        )

    @classmethod
    def from_checkpoint(cls, checkpoint: Path) -> ModelShape:
        """Read ``checkpoint/config.json``."""
        return cls.from_config(json.loads((checkpoint / "config.json").read_text(encoding="utf-8")))

    def to_dict(self) -> dict[str, Any]:
        """Return the shape as a JSON-ready dict."""
        return asdict(self)


def encoder_ops(shape: ModelShape, prompt_tokens: int) -> int:
    """Operations of the encoder over one prompt of ``prompt_tokens`` tokens."""
    n, d, i = prompt_tokens, shape.d_model, shape.inner
    per_layer = n * (8 * d * i + 2 * shape.ffn_matrices * d * shape.d_ff) + 4 * n * n * i
    return shape.num_layers * per_layer


def decoder_ops(shape: ModelShape, prompt_tokens: int, steps: int) -> int:
    """Operations of ``steps`` cached greedy decoding steps against a prompt, lm_head included."""
    n, s, d, i = prompt_tokens, steps, shape.d_model, shape.inner
    per_step = 12 * d * i + 2 * shape.ffn_matrices * d * shape.d_ff + 4 * n * i
    self_attention = 4 * i * s * (s + 1) // 2  # step t attends to t cached positions
    cross_keys_values = 4 * n * d * i  # once per sequence
    per_layer = s * per_step + self_attention + cross_keys_values
    return shape.num_decoder_layers * per_layer + s * 2 * d * shape.vocab_size


def call_ops(shape: ModelShape, prompt_tokens: int, generated: int, ended: bool = True) -> int:
    """Operations of one engine call: encode the prompt, decode ``generated`` tokens.

    ``ended``: the answer ended with the end token (one more decoding step than tokens kept).
    """
    if prompt_tokens < 0 or generated < 0:
        raise ValueError("token counts cannot be negative")
    steps = generated + (1 if ended else 0)
    return encoder_ops(shape, prompt_tokens) + decoder_ops(shape, prompt_tokens, steps)


def total_ops(shape: ModelShape, calls: Iterable[Call]) -> int:
    """Sum :func:`call_ops` over ``(prompt tokens, generated tokens, ended)`` per call."""
    return sum(call_ops(shape, n, g, ended) for n, g, ended in calls)
