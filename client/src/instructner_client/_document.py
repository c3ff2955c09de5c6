"""Documents of any length: split into parts the server accepts, merge the parts' results.

The server refuses a TEXT over its character limit (20,000 by default) rather than cutting it.
A document is split client-side at the best boundary before each limit (a blank line, else a
line break, else a sentence end, else any whitespace; never inside a word), the parts are sent
as one concurrent batch, and the results are merged with offsets shifted back into the
document, so ``document[e.start:e.end] == e.text`` for every entity. An entity that would span
a split point cannot be found; splitting at paragraph and sentence ends keeps that rare. Spans
given to type (document offsets) are never split: each part carries those inside it.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence

from ._errors import InvalidInputError
from ._types import Entity, Extraction, Window
from ._validation import InferenceRequest, Span, check_entities, make_request

__all__ = [
    "DEFAULT_PART_CHARS",
    "document_requests",
    "merge_parts",
    "split_document",
]

DEFAULT_PART_CHARS = 20_000  # the server's default max_text_chars
# Boundaries in order of preference; each split falls just after the separator.
_SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ")


class _Protected:
    """Spans a split point may not fall inside (sorted, non-overlapping)."""

    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = sorted(spans)
        self.starts = [start for start, _ in self.spans]

    def blocking(self, point: int) -> int | None:
        """Return the start of the span ``point`` falls strictly inside, or None."""
        index = bisect.bisect_left(self.starts, point) - 1
        if index >= 0 and self.spans[index][1] > point:
            return self.spans[index][0]
        return None


def _split_point(text: str, start: int, limit: int, protected: _Protected) -> int:
    """Return where the part beginning at ``start`` (at most ``limit`` chars) should end."""
    end = start + limit
    if end >= len(text):
        return len(text)
    floor = start + limit // 2  # parts of at least half the limit when a boundary allows
    for separator in _SEPARATORS:
        search_end = end
        while (at := text.rfind(separator, floor, search_end)) != -1:
            point = at + len(separator)
            blocked = protected.blocking(point)
            if blocked is None:
                return point
            search_end = blocked  # the next candidate ends at or before that span
    for low in (floor, start):  # any whitespace, in the upper half first
        for at in range(end, low, -1):
            if text[at - 1].isspace() and protected.blocking(at) is None:
                return at
    raise InvalidInputError(
        f"text has no whitespace between characters {start} and {end}"
        + (" outside the given spans" if protected.spans else "")
        + f": a part of at most {limit} characters cannot end between words"
    )


def split_document(
    text: str, max_chars: int = DEFAULT_PART_CHARS, protected: Sequence[Span] = ()
) -> list[tuple[int, str]]:
    """Return (offset, part) pairs covering ``text``; parts of blank text are left out.

    No part boundary falls inside a ``protected`` span.

    Raises:
        InvalidInputError: ``max_chars`` is below 2, or a stretch of ``max_chars`` characters
            holds no whitespace to split at.

    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 2:
        raise InvalidInputError(f"max_chars must be an integer of at least 2, got {max_chars!r}")
    guard = _Protected(protected)
    parts = []
    start = 0
    while start < len(text):
        end = _split_point(text, start, max_chars, guard)
        if text[start:end].strip():
            parts.append((start, text[start:end]))
        start = end
    return parts


def _part_entities(
    part: str, offset: int, words: Sequence[str], spans: Sequence[Span] | None
) -> list[object]:
    """Return the entities of one part: the words in it, or the spans inside it (shifted)."""
    if spans is None:
        return [word for word in words if word in part]
    end = offset + len(part)
    return [(s - offset, e - offset) for s, e in spans if offset <= s and e <= end]


def document_requests(
    task: str,
    text: object,
    labels: Sequence[str],
    entities: Sequence[object],
    min_score: float,
    max_chars: int,
) -> tuple[list[int], list[InferenceRequest]]:
    """Split a document and return each part's offset and validated request.

    For the type task each part carries the entity words that occur in it, or the given
    (start, end) spans inside it (shifted to the part); parts without any are not sent.

    Raises:
        InvalidInputError: bad arguments, a blank text, an entity word not in the text or a
            span outside it.

    """
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a str, got {type(text).__name__}")
    words: tuple[str, ...] = ()
    spans: tuple[Span, ...] | None = None
    if task == "type":
        words, spans = check_entities(entities, text)
    offsets, requests = [], []
    for offset, part in split_document(text, max_chars, spans or ()):
        found = _part_entities(part, offset, words, spans) if task == "type" else []
        if task == "type" and not found:
            continue
        offsets.append(offset)
        requests.append(make_request(task, part, labels, found, min_score))
    if not requests:
        raise InvalidInputError("text must not be empty or only whitespace")
    return offsets, requests


def merge_parts(task: str, document: str, parts: Sequence[tuple[int, Extraction]]) -> Extraction:
    """Merge the parts' results into one for ``document`` (offsets shifted, windows kept).

    Raises:
        InvalidInputError: a shifted entity does not match the document (never expected).

    """
    entities: list[Entity] = []
    windows: list[Window] = []
    answers = []
    for offset, part in parts:
        for entity in part.entities:
            start, end = entity.start + offset, entity.end + offset
            if document[start:end] != entity.text:
                raise InvalidInputError(
                    f"entity {entity.text!r} shifted to [{start}, {end}) does not match the text"
                )
            entities.append(dataclasses.replace(entity, start=start, end=end))
        windows += [
            Window(
                start=w.start + offset,
                end=w.end + offset,
                generated_text=w.generated_text,
                input_tokens=w.input_tokens,
                output_tokens=w.output_tokens,
                output_limit_reached=w.output_limit_reached,
            )
            for w in part.windows
        ]
        answers.append(part.generated_text)
    return Extraction(
        task=task,
        text=document,
        entities=tuple(entities),
        generated_text="\n".join(answers),
        windows=tuple(windows),
    )
