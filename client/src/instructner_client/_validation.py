"""Argument checks done before anything is sent, so that a bad call fails fast and precisely."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ._errors import InvalidInputError

__all__ = [
    "TASKS",
    "EntityRef",
    "InferenceRequest",
    "Span",
    "Task",
    "check_entities",
    "check_labels",
    "check_min_score",
    "check_timeout",
    "make_request",
]

Task = Literal["ner", "extract", "type"]
TASKS: tuple[Task, ...] = ("ner", "extract", "type")
Span = tuple[int, int]
# An entity to type: its words, or its (start, end) character span of the text (which
# occurrence: "Paris" at 21:26 in "Paris Hilton visited Paris").
EntityRef = str | Span


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """One validated request: a task, the text and the task's label words / entity words."""

    task: str
    text: str
    labels: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    min_score: float = 0.0
    # typing by position: entities[i] is text[spans[i][0]:spans[i][1]]; None: by words
    spans: tuple[Span, ...] | None = None


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise InvalidInputError("text must not be empty or only whitespace")
    _check_utf8("text", text)
    return text


def _check_utf8(what: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInputError(
            f"{what} is not encodable as UTF-8 at character {error.start}: {error.reason}"
        ) from None


def _check_words(what: str, words: object) -> tuple[str, ...]:
    """Check a list of label or entity words: a real sequence of non-empty strings."""
    if isinstance(words, str | bytes):
        raise InvalidInputError(
            f"{what} must be a list of strings, got a single {type(words).__name__} {words!r}"
        )
    if not isinstance(words, Iterable):
        raise InvalidInputError(f"{what} must be a list of strings, got {type(words).__name__}")
    checked = tuple(words)
    if not checked:
        raise InvalidInputError(f"{what} must not be empty")
    for index, word in enumerate(checked):
        if not isinstance(word, str):
            raise InvalidInputError(f"{what}[{index}] must be a str, got {type(word).__name__}")
        if not word.strip():
            raise InvalidInputError(f"{what}[{index}] must not be empty or only whitespace")
        if word != word.strip():
            raise InvalidInputError(f"{what}[{index}] {word!r} has leading or trailing whitespace")
        _check_utf8(f"{what}[{index}]", word)
    return checked


def check_labels(labels: object) -> tuple[str, ...]:
    """Check the label words of a ner or type call: distinct, comma-free, non-empty strings."""
    checked = _check_words("labels", labels)
    seen: dict[str, int] = {}
    for index, label in enumerate(checked):
        # The prompt lists the options joined by ", ", so a comma would split one label in two.
        if "," in label:
            raise InvalidInputError(
                f"labels[{index}] {label!r} contains a comma, which separates the options"
            )
        # Same key as the server: case and runs of inner whitespace do not make labels differ.
        key = " ".join(label.split()).casefold()
        if key in seen:
            raise InvalidInputError(
                f"labels[{index}] {label!r} repeats labels[{seen[key]}] {checked[seen[key]]!r}"
            )
        seen[key] = index
    return checked


def _is_span(item: object) -> bool:
    return isinstance(item, tuple | list) and not isinstance(item, str | bytes)


def _check_span(index: int, item: object, text: str) -> Span:
    """Check one (start, end) pair: integers, a non-empty range of ``text``, no outer spaces."""
    where = f"entities[{index}]"
    pair = tuple(item) if isinstance(item, tuple | list) else ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise InvalidInputError(f"{where} {item!r} must be a (start, end) pair of integers")
    start, end = int(pair[0]), int(pair[1])
    if not 0 <= start < end <= len(text):
        raise InvalidInputError(
            f"{where} ({start}, {end}) is not a span of the text, which has {len(text)} "
            "characters (0 <= start < end <= length)"
        )
    words = text[start:end]
    if words != words.strip():
        raise InvalidInputError(
            f"{where} ({start}, {end}) {words!r} starts or ends with whitespace"
        )
    return (start, end)


def _check_spans(items: tuple[object, ...], text: str) -> tuple[tuple[str, ...], tuple[Span, ...]]:
    spans = tuple(_check_span(index, item, text) for index, item in enumerate(items))
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    for before, after in zip(order, order[1:], strict=False):
        if spans[after][0] < spans[before][1]:
            first, second = min(before, after), max(before, after)
            verb = "repeats" if spans[first] == spans[second] else "overlaps"
            raise InvalidInputError(
                f"entities[{second}] {spans[second]} {verb} entities[{first}] {spans[first]}"
            )
    return tuple(text[start:end] for start, end in spans), spans


def check_entities(entities: object, text: str) -> tuple[tuple[str, ...], tuple[Span, ...] | None]:
    """Return the entity words and, when the entities are (start, end) spans, the spans."""
    if isinstance(entities, str | bytes) or not isinstance(entities, Iterable):
        raise InvalidInputError(
            "entities must be a list of entity words or (start, end) spans, got "
            + (
                f"a single {type(entities).__name__} {entities!r}"
                if isinstance(entities, str | bytes)
                else type(entities).__name__
            )
        )
    items = tuple(entities)
    kinds = {_is_span(item) for item in items}
    if len(kinds) > 1:
        raise InvalidInputError(
            "entities mixes words and (start, end) spans: give all as words or all as spans"
        )
    if items and _is_span(items[0]):
        return _check_spans(items, text)
    checked = _check_words("entities", items)
    seen: dict[str, int] = {}
    for index, entity in enumerate(checked):
        if entity in seen:
            raise InvalidInputError(
                f"entities[{index}] {entity!r} repeats entities[{seen[entity]}]"
            )
        seen[entity] = index
        # Necessary, not sufficient: the server also requires whole-word occurrences.
        if entity not in text:
            raise InvalidInputError(f"entities[{index}] {entity!r} does not occur in the text")
    return checked, None


def check_min_score(min_score: object) -> float:
    """Return ``min_score`` if it is a number in [0, 1] (0 keeps every entity)."""
    if isinstance(min_score, bool) or not isinstance(min_score, int | float):
        raise InvalidInputError(f"min_score must be a number, got {type(min_score).__name__}")
    if not 0.0 <= min_score <= 1.0:  # also refuses NaN
        raise InvalidInputError(f"min_score must be a number in [0, 1], got {min_score}")
    return float(min_score)


def make_request(
    task: str,
    text: object,
    labels: object = (),
    entities: object = (),
    min_score: object = 0.0,
) -> InferenceRequest:
    """Validate the arguments of one call and return the request to send.

    Raises:
        InvalidInputError: naming the argument and what is wrong with it.

    """
    if task not in TASKS:
        raise InvalidInputError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    checked_text = _check_text(text)
    checked_min = check_min_score(min_score)
    if task == "extract":
        if labels:
            raise InvalidInputError("labels are not used by the extract task: pass none")
        if entities:
            raise InvalidInputError("entities are not used by the extract task: pass none")
        return InferenceRequest(task, checked_text, min_score=checked_min)
    checked_labels = check_labels(labels)
    if task == "ner":
        if entities:
            raise InvalidInputError("entities are not used by the ner task: use the type task")
        return InferenceRequest(task, checked_text, checked_labels, min_score=checked_min)
    words, spans = check_entities(entities, checked_text)
    return InferenceRequest(
        task, checked_text, checked_labels, words, min_score=checked_min, spans=spans
    )


def check_timeout(timeout: object, what: str = "timeout") -> float:
    """Return ``timeout`` as seconds if it is a positive finite number."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidInputError(f"{what} must be a number of seconds, got {type(timeout).__name__}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise InvalidInputError(
            f"{what} must be a positive finite number of seconds, got {timeout}"
        )
    return float(timeout)
