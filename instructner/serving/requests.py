"""Validate one extraction request: task, text, label words and (for typing) entity words.

For typing, the entities may also be pinned to positions: ENTITY_SPANS gives one
(start, end) character span of TEXT per ENTITIES word (:mod:`instructner.method.entity_spans`),
so the caller says which occurrence of a repeated word to type.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from instructner.method.entity_spans import Span, overlap, span_problem
from instructner.method.prompts import TASKS
from instructner.method.spans import occurrences as entity_occurrences
from instructner.serving.errors import RequestError
from instructner.serving.limits import DEFAULT_LIMITS, Limits
from instructner.serving.tensors import (
    GetInput,
    bool_per_row,
    float_per_row,
    spans_per_row,
    string_per_row,
    strings_per_row,
)

DEFAULT_TASK = "ner"
_NEEDS_LABELS = ("ner", "type")
# The section markers of the prompts (instructner.method.prompts). A label or entity word holding
# one
# would change the prompt's structure (a fake "Options:" list), so it is rejected; TEXT may
# hold them: it is data, and the parser keeps only spans of TEXT labelled with given LABELS.
PROMPT_MARKERS = ("Sentence:", "Instruction:", "Options:")
# Tab, line feed and carriage return are ordinary layout in TEXT; other control characters
# (NUL, ESC, C1 codes, ...) carry no meaning for NER and mark binary or garbled input.
_TEXT_LAYOUT = frozenset("\t\n\r")


@dataclass(frozen=True)
class ExtractionRequest:
    """A validated request: run ``task`` on ``text`` with these label and entity words."""

    text: str
    task: str = DEFAULT_TASK
    labels: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    # typing by position: one span of ``text`` per entity (``text[start:end] == entity``)
    spans: tuple[Span, ...] = ()


def _shorten(text: str, width: int = 40) -> str:
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def _check_task(task: str | None, served: Sequence[str] = TASKS) -> str:
    checked = DEFAULT_TASK if task is None else task
    if checked not in TASKS:
        raise RequestError("TASK", f"expected one of {', '.join(TASKS)}, got {_shorten(checked)}")
    if checked not in served:
        raise RequestError(
            "TASK",
            f"{checked!r} is not served by this model, which was trained for "
            f"{', '.join(served)} (its model card lists what it was trained on)",
        )
    return checked


def _control_character(text: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """Describe the first control character of ``text`` not in ``allowed``, or None."""
    for index, ch in enumerate(text):
        if ch not in allowed and unicodedata.category(ch) == "Cc":
            return f"control character U+{ord(ch):04X} at character {index}"
    return None


def comparison_key(word: str) -> str:
    """Return how words are compared: NFKC, case-folded, whitespace runs as one space.

    NFKC maps look-alikes to their plain form (full-width ``Ｏｐｔｉｏｎｓ：``, circled
    ``Ⓞptions:``, compatibility ligatures) and composes NFD sequences, so two spellings of
    one label or of a prompt marker compare equal. The caller's text itself is never changed.
    """
    return " ".join(unicodedata.normalize("NFKC", word).casefold().split())


# The markers as comparison_key writes them, computed once rather than per word checked.
_MARKER_KEYS = tuple((marker, comparison_key(marker)) for marker in PROMPT_MARKERS)


def _check_word(name: str, where: str, word: str) -> str:
    """Reject control characters and prompt markers (also in look-alike forms) in a word.

    Returns the word's :func:`comparison_key`.
    """
    control = _control_character(word)
    if control:
        raise RequestError(name, f"{where} {_shorten(word)} contains a {control}")
    folded = comparison_key(word)
    for marker, key in _MARKER_KEYS:
        if key in folded:
            raise RequestError(
                name,
                f"{where} {_shorten(word)} contains {marker!r}, a section marker of the prompt",
            )
    return folded


def _check_text(text: str, limits: Limits) -> None:
    if len(text) > limits.max_text_chars:
        raise RequestError(
            "TEXT",
            f"is {len(text)} characters long, over the limit of {limits.max_text_chars}; "
            "split the document into several requests",
        )
    if not text.strip():
        raise RequestError("TEXT", "must contain at least one non-whitespace character")
    control = _control_character(text, _TEXT_LAYOUT)
    if control:
        raise RequestError(
            "TEXT", f"contains a {control} (only tab, line feed and carriage return are allowed)"
        )


def _check_labels(task: str, labels: Sequence[str], limits: Limits) -> None:
    if task not in _NEEDS_LABELS:
        if labels:
            raise RequestError("LABELS", f"is not used by task '{task}'; leave it out")
        return
    if not labels:
        raise RequestError(
            "LABELS",
            f"required for task '{task}': give the label words to choose from, "
            "e.g. person, location",
        )
    if len(labels) > limits.max_labels:
        raise RequestError(
            "LABELS", f"has {len(labels)} entries, over the limit of {limits.max_labels}"
        )
    seen: dict[str, int] = {}
    for index, label in enumerate(labels):
        where = f"LABELS[{index}]"
        if not label.strip():
            raise RequestError("LABELS", f"{where} is empty")
        if len(label) > limits.max_label_chars:
            raise RequestError(
                "LABELS",
                f"{where} is {len(label)} characters long, over the limit of "
                f"{limits.max_label_chars}",
            )
        if "," in label:
            raise RequestError(
                "LABELS",
                f"{where} {_shorten(label)} contains a comma, which separates the options "
                "in the prompt",
            )
        key = _check_word("LABELS", where, label)
        if key in seen:
            raise RequestError(
                "LABELS",
                f"{where} {_shorten(label)} repeats LABELS[{seen[key]}] "
                "(labels are compared after NFKC normalization, ignoring case)",
            )
        seen[key] = index


def _check_entities(
    task: str, text: str, entities: Sequence[str], limits: Limits, pinned: bool = False
) -> None:
    """Check the entity words; with ``pinned`` (spans given) a word may repeat."""
    if task != "type":
        if entities:
            raise RequestError("ENTITIES", f"is not used by task '{task}'; leave it out")
        return
    if not entities:
        raise RequestError(
            "ENTITIES", "required for task 'type': give the entity words of TEXT to type"
        )
    if len(entities) > limits.max_entities:
        raise RequestError(
            "ENTITIES", f"has {len(entities)} entries, over the limit of {limits.max_entities}"
        )
    seen: dict[str, int] = {}
    for index, entity in enumerate(entities):
        where = f"ENTITIES[{index}]"
        if not entity.strip():
            raise RequestError("ENTITIES", f"{where} is empty")
        if len(entity) > limits.max_entity_chars:
            raise RequestError(
                "ENTITIES",
                f"{where} is {len(entity)} characters long, over the limit of "
                f"{limits.max_entity_chars}",
            )
        if entity != entity.strip():
            raise RequestError(
                "ENTITIES", f"{where} {_shorten(entity)} starts or ends with whitespace"
            )
        _check_word("ENTITIES", where, entity)
        if entity in seen and not pinned:
            raise RequestError(
                "ENTITIES", f"{where} {_shorten(entity)} repeats ENTITIES[{seen[entity]}]"
            )
        seen[entity] = index
        if not entity_occurrences(text, entity):
            raise RequestError(
                "ENTITIES",
                f"{where} {_shorten(entity)} does not occur in TEXT as a whole word sequence",
            )


def _check_spans(task: str, text: str, entities: Sequence[str], spans: Sequence[Span]) -> None:
    """Check that each span lies in TEXT on word boundaries and holds its ENTITIES word."""
    if task != "type":
        raise RequestError("ENTITY_SPANS", f"is not used by task '{task}'; leave it out")
    if len(spans) != len(entities):
        raise RequestError(
            "ENTITY_SPANS",
            f"has {len(spans)} spans for {len(entities)} ENTITIES words: give one "
            "(start, end) span of TEXT per entity",
        )
    for index, (span, entity) in enumerate(zip(spans, entities, strict=True)):
        where = f"ENTITY_SPANS[{index}]"
        problem = span_problem(text, span)
        if problem:
            raise RequestError("ENTITY_SPANS", f"{where} {problem}")
        found = text[span[0] : span[1]]
        if found != entity:
            raise RequestError(
                "ENTITY_SPANS",
                f"{where} {span[0]}:{span[1]} is {_shorten(found)} in TEXT, but ENTITIES[{index}] "
                f"is {_shorten(entity)}",
            )
    clash = overlap(spans)
    if clash:
        first, second = clash
        verb = "repeats" if spans[first] == spans[second] else "overlaps"
        raise RequestError(
            "ENTITY_SPANS",
            f"ENTITY_SPANS[{second}] {spans[second][0]}:{spans[second][1]} {verb} "
            f"ENTITY_SPANS[{first}] {spans[first][0]}:{spans[first][1]}",
        )


def validate_request(
    text: str,
    task: str | None = None,
    labels: Sequence[str] = (),
    entities: Sequence[str] = (),
    limits: Limits = DEFAULT_LIMITS,
    served: Sequence[str] = TASKS,
    spans: Sequence[Span] | None = None,
) -> ExtractionRequest:
    """Check one request against the task's needs and the documented limits.

    ``task`` None means the default task (``ner``); ``served`` are the tasks the model was
    trained for (others are refused naming them); ``spans`` (typing only) pins each entity
    word to its (start, end) in ``text``.

    Raises:
        RequestError: naming the input (TEXT, TASK, LABELS, ENTITIES or ENTITY_SPANS) and
            what was expected.

    """
    checked_task = _check_task(task, served)
    _check_text(text, limits)
    _check_labels(checked_task, labels, limits)
    _check_entities(checked_task, text, entities, limits, pinned=spans is not None)
    if spans is not None:
        _check_spans(checked_task, text, entities, spans)
    return ExtractionRequest(
        text=text,
        task=checked_task,
        labels=tuple(labels),
        entities=tuple(entities),
        spans=tuple((int(s), int(e)) for s, e in spans or ()),
    )


def _check_list_length(name: str, array: np.ndarray, limit: int, what: str) -> None:
    """Refuse a ``[batch, n, ...]`` list input whose rows hold more than ``limit`` items."""
    if array.ndim >= 2 and array.shape[1] > limit:
        raise RequestError(name, f"has {array.shape[1]} {what}, over the limit of {limit}")


def requests_from_inputs(
    get: GetInput,
    limits: Limits = DEFAULT_LIMITS,
    served: Sequence[str] = TASKS,
) -> list[ExtractionRequest]:
    """Read and validate the rows of one Triton request.

    Inputs: TEXT, TASK, LABELS, ENTITIES and ENTITY_SPANS.

    ``get(name)`` returns the input as numpy or None when the request does not carry it.

    Raises:
        RequestError: for the first row or input that is invalid.

    """
    text_array = get("TEXT")
    if text_array is None:
        raise RequestError("TEXT", "is required: the text to search, UTF-8, shape [batch, 1]")
    texts = string_per_row("TEXT", text_array)
    batch = len(texts)

    # a list over its limit is refused from its shape, before any of it is decoded
    list_limits = {"LABELS": limits.max_labels, "ENTITIES": limits.max_entities}

    def strings(name: str) -> list[list[str]]:
        array = get(name)
        if array is None:
            return [[] for _ in range(batch)]
        _check_list_length(name, array, list_limits[name], "entries")
        return strings_per_row(name, array, batch)

    task_array = get("TASK")
    tasks: list[str | None] = (
        [None] * batch if task_array is None else list(string_per_row("TASK", task_array, batch))
    )
    span_array = get("ENTITY_SPANS")
    spans: list[list[Span] | None] = [None] * batch
    if span_array is not None:
        _check_list_length("ENTITY_SPANS", span_array, limits.max_entities, "spans")
        spans = list(spans_per_row("ENTITY_SPANS", span_array, batch))
    return [
        validate_request(text, task, labels, entities, limits, served, row_spans)
        for text, task, labels, entities, row_spans in zip(
            texts, tasks, strings("LABELS"), strings("ENTITIES"), spans, strict=True
        )
    ]


@dataclass(frozen=True)
class ScoreOptions:
    """What one request row asks for: entity scores at all, and the lowest score to keep."""

    scores: bool = True
    min_score: float = 0.0


def score_options_from_inputs(get: GetInput, batch: int) -> list[ScoreOptions]:
    """Read the optional RETURN_SCORES (BOOL) and MIN_SCORE (FP32) inputs, one per row.

    Raises:
        RequestError: a value of the wrong type or shape, MIN_SCORE outside [0, 1], or a
            MIN_SCORE above 0 on a row that turned scores off.

    """
    scores_array, min_array = get("RETURN_SCORES"), get("MIN_SCORE")
    scores = (
        [True] * batch
        if scores_array is None
        else bool_per_row("RETURN_SCORES", scores_array, batch)
    )
    minimums = [0.0] * batch if min_array is None else float_per_row("MIN_SCORE", min_array, batch)
    options = []
    for row, (wanted, minimum) in enumerate(zip(scores, minimums, strict=True)):
        if not 0.0 <= minimum <= 1.0:
            raise RequestError("MIN_SCORE", f"row {row} is {minimum}, expected a number in [0, 1]")
        if minimum > 0.0 and not wanted:
            raise RequestError(
                "MIN_SCORE",
                f"row {row} is {minimum} but RETURN_SCORES is false: no scores to compare",
            )
        options.append(ScoreOptions(scores=wanted, min_score=minimum))
    return options
