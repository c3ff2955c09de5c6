"""Documents of any length: split into parts the server accepts, merge the parts' results.

The server refuses a TEXT over its character limit (20,000 by default) rather than cutting it.
A document is split client-side at the best boundary before each limit (a blank line, else a
line break, else a sentence end, else any whitespace; never inside a word), the parts are sent
as one concurrent batch, and the results are merged with offsets shifted back into the
document, so ``document[e.start:e.end] == e.text`` for every entity. An entity that would span
a split point cannot be found; splitting at paragraph and sentence ends keeps that rare.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ._errors import InvalidInputError
from ._types import Entity, Extraction, Window
from ._validation import InferenceRequest, make_request

__all__ = [
    "DEFAULT_PART_CHARS",
    "document_requests",
    "merge_parts",
    "split_document",
]

DEFAULT_PART_CHARS = 20_000  # the server's default max_text_chars
# Boundaries in order of preference; each split falls just after the separator.
_SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ")


def _split_point(text: str, start: int, limit: int) -> int:
    """Return where the part beginning at ``start`` (at most ``limit`` chars) should end."""
    end = start + limit
    if end >= len(text):
        return len(text)
    floor = start + limit // 2  # parts of at least half the limit when a boundary allows
    for separator in _SEPARATORS:
        at = text.rfind(separator, floor, end)
        if at != -1:
            return at + len(separator)
    for low in (floor, start):  # any whitespace, in the upper half first
        for at in range(end, low, -1):
            if text[at - 1].isspace():
                return at
    raise InvalidInputError(
        f"text has no whitespace between characters {start} and {end}: a part of at most "
        f"{limit} characters cannot end between words"
    )


def split_document(text: str, max_chars: int = DEFAULT_PART_CHARS) -> list[tuple[int, str]]:
    """Return (offset, part) pairs covering ``text``; parts of blank text are left out.

    Raises:
        InvalidInputError: ``max_chars`` is below 2, or a stretch of ``max_chars`` characters
            holds no whitespace to split at.

    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 2:
        raise InvalidInputError(f"max_chars must be an integer of at least 2, got {max_chars!r}")
    parts = []
    start = 0
    while start < len(text):
        end = _split_point(text, start, max_chars)
        if text[start:end].strip():
            parts.append((start, text[start:end]))
        start = end
    return parts


def document_requests(
    task: str,
    text: object,
    labels: Sequence[str],
    entities: Sequence[str],
    min_score: float,
    max_chars: int,
) -> tuple[list[int], list[InferenceRequest]]:
    """Split a document and return each part's offset and validated request.

    For the type task each part carries the entity words that occur in it; parts without any
    are not sent.

    Raises:
        InvalidInputError: bad arguments, a blank text, or an entity word not in the text.

    """
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a str, got {type(text).__name__}")
    if task == "type":
        for index, entity in enumerate(entities):
            if not isinstance(entity, str) or entity not in text:
                raise InvalidInputError(f"entities[{index}] {entity!r} does not occur in the text")
    offsets, requests = [], []
    for offset, part in split_document(text, max_chars):
        words = tuple(e for e in entities if e in part) if task == "type" else ()
        if task == "type" and not words:
            continue
        offsets.append(offset)
        requests.append(make_request(task, part, labels, words, min_score))
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
