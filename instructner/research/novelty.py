"""Recall on gold mentions seen in training against those never seen.

A generative model trained from scratch can answer from memory: it writes the names it saw in
training instead of copying spans of the sentence. Splitting recall by whether a gold
mention's text occurs among the training mentions shows which of the two it does (a model
that only memorises finds no unseen mention).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from instructner.method.types import Sentence


def training_mentions(sentences: Iterable[Sentence]) -> frozenset[str]:
    """Return the text of every mention of ``sentences`` (words joined by single spaces)."""
    return frozenset(
        " ".join(sentence.tokens[span.start : span.end])
        for sentence in sentences
        for span in sentence.spans
    )


def recall_by_novelty(
    records: Sequence[Mapping[str, Any]], seen: Collection[str]
) -> dict[str, dict[str, Any]]:
    """Return mentions, found and recall for gold mentions in ``seen`` and for the others.

    ``records`` are evaluation records (:func:`instructner.research.evaluation.score_answers`):
    a gold mention is found when a prediction has its start, end and tag. Recall is ``None`` for a
    group without mentions.
    """
    groups = {"seen": [0, 0], "unseen": [0, 0]}
    for record in records:
        predicted = {(p["start"], p["end"], p["tag"]) for p in record["predicted"]}
        for gold in record["gold"]:
            counts = groups["seen" if gold["text"] in seen else "unseen"]
            counts[0] += 1
            counts[1] += (gold["start"], gold["end"], gold["tag"]) in predicted
    return {
        name: {"mentions": total, "found": found, "recall": found / total if total else None}
        for name, (total, found) in groups.items()
    }
