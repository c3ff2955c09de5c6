"""Entities into the structures applications already use: spaCy documents, pandas frames.

Optional extras: ``pip install "instructner-client[spacy]"`` / ``[pandas]``; the client itself
needs neither, and each function imports its library only when called.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._types import Entity

__all__ = ["COLUMNS", "to_dataframe", "to_spacy_spans", "set_spacy_ents"]

COLUMNS = ("text", "label", "start", "end", "score")
ALIGNMENT_MODES = ("strict", "contract", "expand")


def to_dataframe(entities: Iterable[Entity]) -> Any:
    """Return a ``pandas.DataFrame`` with one row per entity and the columns :data:`COLUMNS`.

    ``label`` is None for extraction results, ``score`` None when the server sent none.
    """
    import pandas as pd

    return pd.DataFrame([e.to_dict() for e in entities], columns=list(COLUMNS))


def to_spacy_spans(
    doc: Any,
    entities: Iterable[Entity],
    *,
    alignment_mode: str = "expand",
    default_label: str = "ENTITY",
) -> list[Any]:
    """Return a spaCy ``Span`` for each entity of ``doc.text`` (via ``doc.char_span``).

    Entity offsets are characters of the text the client sent, which must be ``doc.text``.
    spaCy spans cover whole tokens: ``alignment_mode`` says what to do with an entity that
    starts or ends inside a token (``"expand"``: widen to the tokens it touches; ``"contract"``:
    keep the tokens it covers wholly; ``"strict"``: refuse). Untyped (extraction) entities get
    ``default_label``.

    Raises:
        ValueError: the text is not ``doc.text``, the mode is unknown, or an entity cannot be
            aligned to tokens in that mode (never silently dropped).

    """
    if alignment_mode not in ALIGNMENT_MODES:
        raise ValueError(
            f"alignment_mode must be one of {', '.join(ALIGNMENT_MODES)}, got {alignment_mode!r}"
        )
    spans = []
    for entity in entities:
        if doc.text[entity.start : entity.end] != entity.text:
            raise ValueError(
                f"entity {entity.text!r} at [{entity.start}, {entity.end}) is not in the "
                "document's text: pass the Doc of the text the entities were found in"
            )
        label = entity.label if entity.label is not None else default_label
        span = doc.char_span(entity.start, entity.end, label=label, alignment_mode=alignment_mode)
        if span is None:
            raise ValueError(
                f"entity {entity.text!r} at [{entity.start}, {entity.end}) does not cover whole "
                f"tokens of the Doc (alignment_mode {alignment_mode!r}); use 'expand' or "
                "'contract'"
            )
        spans.append(span)
    return spans


def set_spacy_ents(
    doc: Any,
    entities: Iterable[Entity],
    *,
    alignment_mode: str = "expand",
    default_label: str = "ENTITY",
) -> Any:
    """Set ``doc.ents`` to the entities (see :func:`to_spacy_spans`) and return ``doc``.

    Raises:
        ValueError: as :func:`to_spacy_spans`, or when two entities share a token after
            alignment (spaCy's entities may not overlap).

    """
    spans = to_spacy_spans(
        doc, entities, alignment_mode=alignment_mode, default_label=default_label
    )
    ordered = sorted(spans, key=lambda span: (span.start, span.end))
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.start < before.end:
            raise ValueError(
                f"entities {before.text!r} and {after.text!r} share a token after alignment; "
                "spaCy entities may not overlap"
            )
    doc.ents = ordered
    return doc
