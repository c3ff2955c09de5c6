"""Strict span-level F1 of a path's output on the workload's sentences.

Every path is scored the same way: entities as end-exclusive character offsets into the
sentence text with a label word, mapped to the corpus tag by the verbalizer, against the gold
spans (:func:`instructner.research.metrics.score_spans`). A label word the verbalizer does not know
stays as it is and counts as a false positive, and so does an empty span (start >= end; the
PyPI package can produce them), which the span scorer itself rejects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from instructner.method.labels import Verbalizer
from instructner.method.parser import parse_ner_answer
from instructner.method.types import Sentence
from instructner.research.metrics import TypeScores, score_spans

LabelledSpan = tuple[int, int, str]  # start, end, label word


@dataclass(frozen=True)
class Quality:
    """Micro precision/recall/F1 over the workload, with the counts behind them."""

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int

    def to_dict(self) -> dict[str, object]:
        """Return the scores as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _tag(verbalizer: Verbalizer, word: str) -> str:
    try:
        return verbalizer.tag(word)
    except KeyError:
        return word


def score_entities(
    sentences: Sequence[Sentence],
    predicted: Sequence[Sequence[LabelledSpan]],
    verbalizer: Verbalizer,
) -> Quality:
    """Score predicted (start, end, label word) spans per sentence against the gold spans.

    Raises:
        ValueError: the number of predictions differs from the number of sentences.

    """
    if len(predicted) != len(sentences):
        raise ValueError(f"{len(predicted)} predictions for {len(sentences)} sentences")
    gold = [[(e.start, e.end, str(e.label)) for e in s.char_spans()] for s in sentences]
    pred = [
        [(start, end, _tag(verbalizer, word)) for start, end, word in p if start < end]
        for p in predicted
    ]
    empty = sum(1 for p in predicted for start, end, _ in p if start >= end)
    scores = score_spans(gold, pred)
    # empty spans are false positives the span scorer refuses to see; the ratios come from
    # the metrics module's own counts-to-scores rule
    total = TypeScores.from_counts(scores.tp, scores.fp + empty, scores.fn)
    return Quality(total.precision, total.recall, total.f1, total.tp, total.fp, total.fn)


def score_answers(
    sentences: Sequence[Sentence], answers: Sequence[str], verbalizer: Verbalizer
) -> Quality:
    """Parse NER answers with the project's parser and score them."""
    if len(answers) != len(sentences):
        raise ValueError(f"{len(answers)} answers for {len(sentences)} sentences")
    labels = list(verbalizer.words)
    predicted = [
        [(e.start, e.end, str(e.label)) for e in parse_ner_answer(answer, s.text, labels)]
        for s, answer in zip(sentences, answers, strict=True)
    ]
    return score_entities(sentences, predicted, verbalizer)
