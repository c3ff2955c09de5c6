"""Per-entity confidence from the probabilities of the answer tokens that wrote the entity.

A generative model writes each entity as answer text: its mention ("Peter Blackburn") and, for
typed tasks, its label word ("person"). The tokens whose characters overlap those two answer
ranges carry the model's decisions about the entity, and their log-probabilities (the engine's
``output_log_probs``) give its score. How they combine into one number in [0, 1] is a measured
choice (``instructner calibrate``; docs/confidence.md): the geometric mean of the token
probabilities, the smallest one, or their product. Which one a model is served with is that
model's own measurement: ``instructner calibrate`` writes the best-calibrated formula into the
model directory's ``calibration/calibration.json`` and the repository build reads it from there.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from instructner.method.parser import LocatedEntity
from instructner.method.spans import Span


@dataclass(frozen=True)
class TokenProb:
    """One generated token: the answer characters it wrote and its log-probability."""

    start: int
    end: int
    log_prob: float


def _geometric_mean(log_probs: Sequence[float]) -> float:
    return math.exp(sum(log_probs) / len(log_probs))


def _minimum(log_probs: Sequence[float]) -> float:
    return math.exp(min(log_probs))


def _product(log_probs: Sequence[float]) -> float:
    return math.exp(sum(log_probs))


SCORE_METHODS: dict[str, Callable[[Sequence[float]], float]] = {
    "geometric_mean": _geometric_mean,
    "minimum": _minimum,
    "product": _product,
}
# For a model without a calibration record (a random-init stand-in, a test fixture): the
# formula best calibrated on the first, barely trained models (docs/confidence.md).
DEFAULT_SCORE_METHOD = "geometric_mean"
CALIBRATION_RECORD = Path("calibration") / "calibration.json"


def parse_score_method(value: str) -> str:
    """Return ``value`` if it names a score formula of :data:`SCORE_METHODS`.

    Raises:
        ValueError: it names none.

    """
    if value not in SCORE_METHODS:
        raise ValueError(
            f"unknown score method {value!r}: expected one of {', '.join(SCORE_METHODS)}"
        )
    return value


def served_score_method(model_dir: str | Path) -> str:
    """Return the score formula ``model_dir`` is served with: the one its calibration chose.

    ``instructner calibrate --out MODEL/calibration`` records the formula with the lowest
    expected calibration error on the dev splits as ``served_method``. A model directory
    without that record is served with :data:`DEFAULT_SCORE_METHOD`.

    Raises:
        ValueError: the record cannot be read or names an unknown formula.

    """
    record = Path(model_dir) / CALIBRATION_RECORD
    if not record.is_file():
        return DEFAULT_SCORE_METHOD
    try:
        summary = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{record}: not a readable calibration record ({error})") from error
    method = summary.get("served_method") if isinstance(summary, dict) else None
    if method is None:
        return DEFAULT_SCORE_METHOD  # recorded before calibration chose the served formula
    try:
        return parse_score_method(str(method))
    except ValueError as error:
        raise ValueError(f"{record}: served_method: {error}") from error


def token_probs(spans: Sequence[Span | None], log_probs: Sequence[float]) -> list[TokenProb]:
    """Pair each token's answer range with its log-probability; tokens without text are left out.

    Raises:
        ValueError: the two sequences differ in length.

    """
    if len(spans) != len(log_probs):
        raise ValueError(f"{len(spans)} token spans but {len(log_probs)} log-probabilities")
    return [
        TokenProb(span[0], span[1], float(lp))
        for span, lp in zip(spans, log_probs, strict=True)
        if span is not None
    ]


def _overlapping(tokens: Sequence[TokenProb], starts: Sequence[int], span: Span) -> list[float]:
    # Tokens are in answer order with non-decreasing starts (the bytes of one character share
    # its range): bisect, step back over tokens still open at the range's start, then walk
    # while tokens start inside the range.
    first = bisect.bisect_left(starts, span[0])
    while first > 0 and tokens[first - 1].end > span[0]:
        first -= 1
    found = []
    for token in tokens[first:]:
        if token.start >= span[1]:
            break
        if token.end > span[0] and token.start < span[1] and token.end > token.start:
            found.append(token.log_prob)
    return found


def entity_scores(
    tokens: Sequence[TokenProb],
    located: Sequence[LocatedEntity],
    method: str = DEFAULT_SCORE_METHOD,
) -> list[float | None]:
    """Return one score in [0, 1] per located entity (None if no token wrote it).

    Raises:
        ValueError: ``method`` is not one of :data:`SCORE_METHODS`.

    """
    combine = SCORE_METHODS[parse_score_method(method)]
    starts = [token.start for token in tokens]
    scores: list[float | None] = []
    for entity in located:
        log_probs = _overlapping(tokens, starts, entity.mention)
        if entity.label is not None:
            log_probs += _overlapping(tokens, starts, entity.label)
        # log-probabilities are <= 0; clamp float noise so the score stays in [0, 1]
        scores.append(
            min(1.0, max(0.0, combine([min(lp, 0.0) for lp in log_probs]))) if log_probs else None
        )
    return scores
