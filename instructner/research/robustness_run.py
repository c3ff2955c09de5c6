"""Run robustness variants through the serving pipeline and score them.

Each :class:`instructner.research.robustness.Case` is sent as the server would receive it
(:class:`instructner.serving.pipeline.Pipeline`: validation, windows, the model's view of the
text, the engine, the parser, offsets in the caller's text); the entities of a case's
requests are unioned and scored against its gold as strict (start, end, label word) triples.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from instructner.research.robustness import Case
from instructner.serving.errors import RequestError
from instructner.serving.pipeline import Pipeline, Query

logger = logging.getLogger(__name__)

Triple = tuple[int, int, str]


@dataclass
class Counts:
    """Strict micro counts over a variant's cases, and the requests the server refused."""

    gold: int = 0
    predicted: int = 0
    correct: int = 0
    refused: int = 0
    sentences: int = 0

    def add(self, gold: set[Triple], predicted: set[Triple]) -> None:
        """Count one case."""
        self.gold += len(gold)
        self.predicted += len(predicted)
        self.correct += len(gold & predicted)
        self.sentences += 1

    def to_dict(self) -> dict[str, float | int]:
        """Return precision, recall and F1 in percent, with the counts."""
        precision = 100.0 * self.correct / self.predicted if self.predicted else 0.0
        recall = 100.0 * self.correct / self.gold if self.gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": round(precision, 2),
            "recall": round(recall, 2),
            "f1": round(f1, 2),
            "gold": self.gold,
            "predicted": self.predicted,
            "correct": self.correct,
            "refused": self.refused,
            "sentences": self.sentences,
        }


def _chunks(items: Sequence[Case], size: int) -> Iterable[Sequence[Case]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _queries(case: Case) -> list[Query]:
    return [Query(case.text, "ner", labels) for labels in case.requests]


def score_cases(
    pipeline: Pipeline, cases: Sequence[Case], batch: int = 64, progress: str | None = None
) -> Counts:
    """Send every case's requests through ``pipeline`` and count strict matches.

    A request the pipeline refuses (over its limits) counts as predicting nothing.
    """
    counts = Counts()
    bar = tqdm(total=len(cases), desc=progress, disable=progress is None, leave=False)
    for chunk in _chunks(cases, batch):
        queries = [query for case in chunk for query in _queries(case)]
        try:
            results = pipeline.run_many(queries)
        except RequestError:
            results = []
            for query in queries:
                try:
                    results.extend(pipeline.run_many([query]))
                except RequestError:
                    counts.refused += 1
                    results.append(None)  # type: ignore[arg-type]
        position = 0
        for case in chunk:
            predicted: set[Triple] = set()
            for result in results[position : position + len(case.requests)]:
                if result is not None:
                    predicted.update((e.start, e.end, e.label) for e in result.entities)
            position += len(case.requests)
            counts.add(set(case.gold), predicted)
        bar.update(len(chunk))
    bar.close()
    return counts
