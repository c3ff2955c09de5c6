"""Strict span-level micro precision, recall and F1, overall and per entity type.

A predicted mention counts as a true positive only when its start, end and type all equal
those of a gold mention of the same sentence. Every predicted mention counts: one that the
gold does not have is a false positive, so a wrong type or a shifted boundary costs one false
positive *and* one false negative.

Conventions (chosen to agree with seqeval 1.2.2's default mode on BIO tags, which the tests
check on real corpora):

- A ratio whose denominator is zero is 0.0: precision with no predictions, recall with no
  gold mentions, F1 when precision + recall is zero. Scoring nothing against nothing therefore
  gives 0.0 everywhere, as seqeval does (``zero_division=0``), not 1.0.
- Spans are compared as multisets within each sentence: a span predicted twice, with one gold
  copy, is one true positive and one false positive. (BIO tags cannot hold duplicates, so this
  only matters for span lists such as parser output, where a repeated entity is a real error.)
- ``per_type`` holds every type that occurs in the gold *or* the predictions, like seqeval's
  ``classification_report``; ``support`` is the number of gold mentions of that type.

Spans are opaque ``(start, end, type)`` triples: token offsets and character offsets both work
as long as gold and predictions use the same unit. Scoring model output in character offsets
against :meth:`Sentence.char_spans` makes a prediction that does not sit on token boundaries a
plain false positive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from instructner.method.types import Entity, Sentence, TokenSpan
from instructner.research.data import bio_to_spans

Span = tuple[int, int, str]

__all__ = [
    "Scores",
    "Span",
    "TokenAlignment",
    "TypeScores",
    "entities_to_token_spans",
    "score_sentences",
    "score_spans",
    "score_tags",
    "spans_to_tags",
]


def _ratio(numerator: int, denominator: int) -> float:
    """Return numerator / denominator, or 0.0 when the denominator is 0 (seqeval's convention)."""
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    """Return the harmonic mean of precision and recall, 0.0 when both are 0."""
    total = precision + recall
    return 2 * precision * recall / total if total else 0.0


@dataclass(frozen=True)
class TypeScores:
    """Scores of one entity type; ``support`` is its number of gold mentions (tp + fn)."""

    precision: float
    recall: float
    f1: float
    support: int
    tp: int
    fp: int
    fn: int

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int) -> TypeScores:
        """Build the scores from true positive, false positive and false negative counts."""
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        return cls(precision, recall, _f1(precision, recall), tp + fn, tp, fp, fn)

    def to_dict(self) -> dict[str, float | int]:
        """Return the JSON shape: precision, recall, f1, support, tp, fp, fn."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


@dataclass(frozen=True)
class Scores:
    """Micro-averaged scores over all mentions plus one :class:`TypeScores` per type."""

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    per_type: dict[str, TypeScores]

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape: micro precision/recall/f1, tp/fp/fn and ``per_type``."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "per_type": {name: scores.to_dict() for name, scores in self.per_type.items()},
        }


def _checked_spans(spans: Iterable[Span], side: str, index: int) -> Counter[Span]:
    """Count the spans of one sentence, rejecting anything that is not a (start, end, type)."""
    counts: Counter[Span] = Counter()
    for span in spans:
        if (
            not isinstance(span, tuple)
            or len(span) != 3
            or not isinstance(span[0], int)
            or not isinstance(span[1], int)
            or not isinstance(span[2], str)
        ):
            raise ValueError(
                f"{side} sentence {index}: expected a (start, end, type) span, got {span!r}"
            )
        if not 0 <= span[0] < span[1]:
            raise ValueError(
                f"{side} sentence {index}: span {span!r} needs 0 <= start < end (end-exclusive)"
            )
        counts[span] += 1
    return counts


def score_spans(gold: Sequence[Iterable[Span]], pred: Sequence[Iterable[Span]]) -> Scores:
    """Score predicted spans against gold spans, sentence by sentence.

    Args:
        gold: for each sentence, its gold ``(start, end, type)`` spans (end-exclusive).
        pred: for each sentence, the predicted spans, in the same sentence order.

    Returns:
        Micro and per-type scores; see the module docstring for duplicates and 0/0.

    Raises:
        ValueError: the two sides hold different numbers of sentences, or a span is malformed.

    """
    if len(gold) != len(pred):
        raise ValueError(
            f"gold has {len(gold)} sentences but predictions have {len(pred)}; "
            "both must list the same sentences in the same order"
        )
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    types: set[str] = set()
    for index, (gold_spans, pred_spans) in enumerate(zip(gold, pred, strict=True)):
        gold_counts = _checked_spans(gold_spans, "gold", index)
        pred_counts = _checked_spans(pred_spans, "predicted", index)
        for span in gold_counts.keys() | pred_counts.keys():
            label = span[2]
            types.add(label)
            matched = min(gold_counts[span], pred_counts[span])
            tp[label] += matched
            fp[label] += pred_counts[span] - matched
            fn[label] += gold_counts[span] - matched
    total_tp, total_fp, total_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    precision = _ratio(total_tp, total_tp + total_fp)
    recall = _ratio(total_tp, total_tp + total_fn)
    per_type = {
        name: TypeScores.from_counts(tp[name], fp[name], fn[name]) for name in sorted(types)
    }
    return Scores(
        precision=precision,
        recall=recall,
        f1=_f1(precision, recall),
        tp=total_tp,
        fp=total_fp,
        fn=total_fn,
        per_type=per_type,
    )


def _tag_spans(tags: Sequence[str], side: str, index: int) -> list[Span]:
    try:
        spans = bio_to_spans(tags)
    except ValueError as error:
        raise ValueError(f"{side} sentence {index}: {error}") from None
    return [(span.start, span.end, span.tag) for span in spans]


def score_tags(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> Scores:
    """Score predicted BIO tag sequences against gold ones (mentions as in :func:`bio_to_spans`).

    Raises:
        ValueError: different numbers of sentences, a sentence whose two tag sequences have
            different lengths, or a tag that is not BIO (the message names the sentence index).

    """
    if len(gold_tags) != len(pred_tags):
        raise ValueError(
            f"gold has {len(gold_tags)} sentences but predictions have {len(pred_tags)}; "
            "both must list the same sentences in the same order"
        )
    for index, (gold, pred) in enumerate(zip(gold_tags, pred_tags, strict=True)):
        if len(gold) != len(pred):
            raise ValueError(
                f"sentence {index}: gold has {len(gold)} tags but prediction has {len(pred)}"
            )
    return score_spans(
        [_tag_spans(tags, "gold", index) for index, tags in enumerate(gold_tags)],
        [_tag_spans(tags, "predicted", index) for index, tags in enumerate(pred_tags)],
    )


def score_sentences(gold: Sequence[Sentence], pred: Sequence[Sentence]) -> Scores:
    """Score predicted tagged sentences against gold ones after checking that tokens agree.

    Raises:
        ValueError: different numbers of sentences, or the first sentence whose tokens differ
            (named by index and by both sources, ``file:line``, with the first differing token).

    """
    if len(gold) != len(pred):
        raise ValueError(
            f"gold has {len(gold)} sentences but predictions have {len(pred)}; "
            "both must list the same sentences in the same order"
        )
    for index, (gold_sentence, pred_sentence) in enumerate(zip(gold, pred, strict=True)):
        if gold_sentence.tokens != pred_sentence.tokens:
            raise ValueError(
                f"sentence {index} differs: gold {gold_sentence.source or '?'} vs predicted "
                f"{pred_sentence.source or '?'}: "
                + _first_token_difference(gold_sentence.tokens, pred_sentence.tokens)
            )
    return score_tags([s.tags for s in gold], [s.tags for s in pred])


def _first_token_difference(gold: Sequence[str], pred: Sequence[str]) -> str:
    for position, (gold_token, pred_token) in enumerate(zip(gold, pred, strict=False)):
        if gold_token != pred_token:
            return f"token {position} is {gold_token!r} in gold but {pred_token!r} in predictions"
    return f"gold has {len(gold)} tokens but predictions have {len(pred)}"


@dataclass(frozen=True)
class TokenAlignment:
    """Character-offset entities mapped onto tokens.

    ``unaligned`` keeps, in input order, every entity whose start or end does not fall on a
    token boundary of the sentence text; they have no token span and are never dropped quietly.
    """

    spans: tuple[TokenSpan, ...]
    unaligned: tuple[Entity, ...]


def entities_to_token_spans(
    entities: Iterable[Entity],
    sentence: Sentence,
    label_to_tag: Callable[[str], str] | None = None,
) -> TokenAlignment:
    """Map character-offset entities over ``sentence.text`` to token spans.

    Args:
        entities: entities with end-exclusive character offsets into ``sentence.text``.
        sentence: the tokenized sentence the offsets refer to.
        label_to_tag: maps an entity's label word to the corpus tag (e.g. a verbalizer's
            ``tag``); without it the label is used as the tag unchanged.

    Raises:
        ValueError: an entity has no label (extraction output needs a placeholder label first).

    """
    offsets = sentence.token_char_offsets()
    token_at_start = {start: index for index, (start, _) in enumerate(offsets)}
    token_at_end = {end: index for index, (_, end) in enumerate(offsets)}
    spans: list[TokenSpan] = []
    unaligned: list[Entity] = []
    for entity in entities:
        if entity.label is None:
            raise ValueError(f"entity {entity.text!r} at {entity.start}:{entity.end} has no label")
        first = token_at_start.get(entity.start)
        last = token_at_end.get(entity.end)
        if first is None or last is None or last < first:
            unaligned.append(entity)
            continue
        tag = label_to_tag(entity.label) if label_to_tag else entity.label
        spans.append(TokenSpan(start=first, end=last + 1, tag=tag))
    return TokenAlignment(spans=tuple(spans), unaligned=tuple(unaligned))


def spans_to_tags(spans: Iterable[TokenSpan], length: int) -> list[str]:
    """Write token spans as BIO tags over ``length`` tokens.

    Raises:
        ValueError: a span lies outside the sentence or overlaps another one (BIO cannot
            hold overlapping mentions).

    """
    tags = ["O"] * length
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if not 0 <= span.start < span.end <= length:
            raise ValueError(f"span {span} lies outside a sentence of {length} tokens")
        if any(tag != "O" for tag in tags[span.start : span.end]):
            raise ValueError(f"span {span} overlaps another span; BIO tags cannot hold both")
        tags[span.start] = f"B-{span.tag}"
        for position in range(span.start + 1, span.end):
            tags[position] = f"I-{span.tag}"
    return tags
