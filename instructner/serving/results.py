"""Turn engine output into ``ExtractionResult`` messages, per window and per document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from instructner.method.confidence import DEFAULT_SCORE_METHOD, TokenProb, entity_scores
from instructner.method.entity_spans import pin_to_spans
from instructner.method.label_aliases import normalize_label, resolve_labels
from instructner.method.parser import LocatedEntity, locate_answer, type_mentions
from instructner.method.spans import Span
from instructner.method.textview import TextView, model_view, view_entities
from instructner.method.types import Entity as CoreEntity
from instructner.serving.protos import Entity, ExtractionResult, Window

WINDOW_SEPARATOR = "\n"  # between the answers of windows in generated_text


def window_result(
    task: str,
    text: str,
    answer: str,
    labels: Sequence[str] = (),
    entities: Sequence[str] = (),
    input_tokens: int = 0,
    output_tokens: int = 0,
    output_limit_reached: bool = False,
    token_probs: Sequence[TokenProb] | None = None,
    score_method: str = DEFAULT_SCORE_METHOD,
    aliases: Mapping[str, str] | None = None,
    spans: Sequence[Span] = (),
) -> ExtractionResult:
    """Parse one window's answer into a result whose offsets index ``text``.

    The answer is read against the model's view of ``text`` (:mod:`instructner.method.textview`) and
    each entity is mapped back to the caller's characters, so ``text[start:end]`` is its
    text. With ``token_probs`` (the answer's tokens and their log-probabilities) every entity
    gets its score by the formula ``score_method`` (:mod:`instructner.method.confidence`). With
    ``aliases`` the labels were asked as the known words they map to; each entity carries the
    caller's label and, where it differs, the word the model answered (``model_label``).
    With ``spans`` (typing by position, one per entity) each typed mention is placed at its
    entity's given span (:func:`instructner.method.entity_spans.pin_to_spans`).
    """
    view = model_view(text)
    asked = resolve_labels(aliases or {}, labels) if labels else []
    words = view_entities(entities)
    if spans:
        found = _pinned(text, view.text, answer, asked, words, spans)
        placed = [located.entity for located in found]
    else:
        found = locate_answer(task, answer, view.text, asked, words)
        placed = [_to_original(view, located.entity) for located in found]
    caller_label = dict(zip(asked, labels, strict=True))
    scores: list[float | None] = (
        [None] * len(found)
        if token_probs is None
        else entity_scores(token_probs, found, score_method)
    )
    return ExtractionResult(
        task=task,
        entities=[
            _entity_message(entity, score, caller_label)
            for entity, score in zip(placed, scores, strict=True)
        ],
        generated_text=answer,
        windows=[
            Window(
                start=0,
                end=len(text),
                generated_text=answer,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                output_limit_reached=output_limit_reached,
            )
        ],
    )


def _word_key(word: str) -> str:
    """Compare entity words as the parser does: whitespace runs as one space."""
    return " ".join(word.split())


def _pinned(
    text: str,
    view_text: str,
    answer: str,
    labels: Sequence[str],
    words: Sequence[str],
    spans: Sequence[Span],
) -> list[LocatedEntity]:
    """Return the typed mentions placed at the caller's spans of ``text`` (text order).

    ``words`` are the entities as the model reads them (one per span), compared to the
    answer's mentions the way the parser compares entity words.
    """
    mentions = type_mentions(answer, view_text, words, labels)
    pins = pin_to_spans(
        [_word_key(mention[0]) for mention in mentions],
        [(_word_key(word), span) for word, span in zip(words, spans, strict=True)],
    )
    placed = [
        LocatedEntity(
            CoreEntity(start=start, end=end, text=text[start:end], label=label),
            mention_span,
            label_span,
        )
        for (_, label, mention_span, label_span), pinned in zip(mentions, pins, strict=True)
        for start, end in pinned
    ]
    return sorted(placed, key=lambda located: (located.entity.start, located.entity.end))


def _to_original(view: TextView, entity: CoreEntity) -> CoreEntity:
    """Return ``entity`` (offsets into the view) with offsets and text of the original."""
    if view.identity:
        return entity
    start, end = view.to_original(entity.start, entity.end)
    return CoreEntity(start=start, end=end, text=view.original[start:end], label=entity.label)


def _entity_message(
    entity: CoreEntity, score: float | None = None, caller_label: Mapping[str, str] | None = None
) -> Entity:
    message = Entity(text=entity.text, start=entity.start, end=entity.end)
    if entity.label is not None:
        label = (caller_label or {}).get(entity.label, entity.label)
        message.label = label
        if normalize_label(label) != entity.label:  # an alias, not only the letter case
            message.model_label = entity.label
    if score is not None:
        message.score = score
    return message


def keep_confident(result: ExtractionResult, min_score: float) -> ExtractionResult:
    """Drop the entities scored below ``min_score``, keeping the others in their order.

    With ``min_score`` 0 nothing is dropped. Above it, an entity without a score (its tokens
    could not be mapped to the answer) is kept: filtering never drops what it cannot judge.
    """
    if min_score <= 0.0:
        return result
    # Scores travel as 32-bit floats: compare in that precision, so that min_score 0.9 keeps
    # an entity scored 0.9.
    threshold = float(np.float32(min_score))
    kept = [e for e in result.entities if not e.HasField("score") or e.score >= threshold]
    filtered = ExtractionResult()
    filtered.CopyFrom(result)
    del filtered.entities[:]
    filtered.entities.extend(kept)
    return filtered


def merge_windows(
    task: str, document: str, parts: Sequence[tuple[int, ExtractionResult]]
) -> ExtractionResult:
    """Merge window results into the document's result, shifting offsets by each window start.

    ``parts`` are (window start in ``document``, window result) in text order.

    Raises:
        ValueError: a shifted entity does not match the document text (a bug, never input).

    """
    merged = ExtractionResult(task=task)
    answers = []
    for offset, part in parts:
        for entity in part.entities:
            shifted = merged.entities.add()
            shifted.CopyFrom(entity)
            shifted.start = entity.start + offset
            shifted.end = entity.end + offset
            if document[shifted.start : shifted.end] != shifted.text:
                raise ValueError(
                    f"entity {shifted.text!r} shifted to {shifted.start}-{shifted.end} does not "
                    "match the document text"
                )
        for window in part.windows:
            shifted_window = merged.windows.add()
            shifted_window.CopyFrom(window)
            shifted_window.start = window.start + offset
            shifted_window.end = window.end + offset
        answers.append(part.generated_text)
    merged.generated_text = WINDOW_SEPARATOR.join(answers)
    return merged
