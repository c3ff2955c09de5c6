"""How well entity scores predict correctness: calibration error, reliability, thresholds.

Every entity the served path would return is scored under each formula of
:data:`instructner.method.confidence.SCORE_METHODS` and marked correct when its span and label
match a gold entity exactly (the strict criterion of :mod:`instructner.research.metrics`).
From those pairs:

* expected calibration error (ECE): entities binned by score into equal-width bins; the
  entity-weighted mean gap between each bin's mean score and its share of correct entities;
* the Brier score (mean squared gap between score and correctness);
* per threshold, the precision of the entities kept and the recall over all gold entities.

The generation is the served one: prompts of the serving tokenizer, greedy answers of an
engine with token log-probabilities, the answer parsed with provenance and scored as the
served answer parsing scores it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from instructner.method.confidence import (
    DEFAULT_SCORE_METHOD,
    SCORE_METHODS,
    entity_scores,
    token_probs,
)
from instructner.method.labels import Verbalizer
from instructner.method.parser import locate_answer
from instructner.method.prompts import build_prompt
from instructner.method.types import Sentence
from instructner.serving.engine import Engine
from instructner.serving.tokenizer import PromptTokenizer

logger = logging.getLogger(__name__)

THRESHOLDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
BINS = 10


@dataclass(frozen=True)
class ScoredEntity:
    """One predicted entity: its score under each method, and whether it was right."""

    scores: dict[str, float]
    correct: bool


@dataclass
class CalibrationSet:
    """The scored predictions of one corpus and its number of gold entities."""

    corpus: str
    entities: list[ScoredEntity] = field(default_factory=list)
    gold: int = 0
    sentences: int = 0


def score_sentences(
    engine: Engine,
    tokenizer: PromptTokenizer,
    sentences: Sequence[Sentence],
    verbalizer: Verbalizer,
    corpus: str,
    batch_size: int = 64,
    max_new_tokens: int = 128,
) -> CalibrationSet:
    """Answer the NER prompt of every sentence and score each parsed entity by every method."""
    result = CalibrationSet(corpus=corpus, sentences=len(sentences))
    labels = list(verbalizer.words)
    for first in tqdm(range(0, len(sentences), batch_size), desc=corpus, unit="batch"):
        batch = sentences[first : first + batch_size]
        prompts = [tokenizer.encode(build_prompt("ner", s.text, labels, ())) for s in batch]
        generated = engine.generate(
            prompts, [max_new_tokens] * len(prompts), tokenizer.eos_token_id, return_log_probs=True
        )
        for sentence, answer in zip(batch, generated, strict=True):
            gold = {(e.start, e.end, e.label) for e in sentence.char_spans()}
            result.gold += len(gold)
            if answer.log_probs is None:
                raise ValueError(f"the {engine.kind} engine returned no log-probabilities")
            text, spans = tokenizer.decode_with_spans(answer.token_ids)
            tokens = token_probs(spans, answer.log_probs)
            located = locate_answer("ner", text, sentence.text, labels)
            by_method = {m: entity_scores(tokens, located, m) for m in SCORE_METHODS}
            for index, item in enumerate(located):
                entity = item.entity
                tag = verbalizer.tag(entity.label) if entity.label is not None else None
                scores = {m: by_method[m][index] for m in SCORE_METHODS}
                if any(score is None for score in scores.values()):
                    continue  # no token wrote it (never seen; would be served without a score)
                result.entities.append(
                    ScoredEntity(
                        scores={m: float(s) for m, s in scores.items() if s is not None},
                        correct=(entity.start, entity.end, tag) in gold,
                    )
                )
    return result


def reliability_bins(
    entities: Sequence[ScoredEntity], method: str, bins: int = BINS
) -> list[dict[str, float]]:
    """Per equal-width score bin: entity count, mean score and share of correct entities."""
    rows = []
    for index in range(bins):
        low, high = index / bins, (index + 1) / bins
        members = [
            e
            for e in entities
            if low <= e.scores[method] < high or (index == bins - 1 and e.scores[method] == 1.0)
        ]
        rows.append(
            {
                "low": low,
                "high": high,
                "count": len(members),
                "mean_score": _mean([e.scores[method] for e in members]),
                "accuracy": _mean([float(e.correct) for e in members]),
            }
        )
    return rows


def expected_calibration_error(
    entities: Sequence[ScoredEntity], method: str, bins: int = BINS
) -> float:
    """Entity-weighted mean |accuracy - mean score| over equal-width score bins."""
    if not entities:
        return 0.0
    total = len(entities)
    return sum(
        row["count"] / total * abs(row["accuracy"] - row["mean_score"])
        for row in reliability_bins(entities, method, bins)
        if row["count"]
    )


def brier_score(entities: Sequence[ScoredEntity], method: str) -> float:
    """Mean squared difference between score and correctness (0 is perfect)."""
    return _mean([(e.scores[method] - float(e.correct)) ** 2 for e in entities])


def threshold_table(
    entities: Sequence[ScoredEntity],
    gold: int,
    method: str = DEFAULT_SCORE_METHOD,
    thresholds: Iterable[float] = THRESHOLDS,
) -> list[dict[str, float]]:
    """Precision of the entities kept at each threshold, and recall over ``gold`` entities."""
    rows = []
    for threshold in thresholds:
        kept = [e for e in entities if e.scores[method] >= threshold]
        right = sum(e.correct for e in kept)
        rows.append(
            {
                "threshold": threshold,
                "kept": len(kept),
                "precision": right / len(kept) if kept else 0.0,
                "recall": right / gold if gold else 0.0,
            }
        )
    return rows


def served_method(entities: Sequence[ScoredEntity]) -> str:
    """Return the formula to serve: the lowest expected calibration error (ties: first listed).

    Without entities nothing was measured, and :data:`DEFAULT_SCORE_METHOD` stays.
    """
    if not entities:
        return DEFAULT_SCORE_METHOD
    return min(SCORE_METHODS, key=lambda method: expected_calibration_error(entities, method))


def summarize(sets: Sequence[CalibrationSet]) -> dict[str, object]:
    """ECE and Brier per method, per corpus and pooled; threshold tables per corpus and pooled.

    ``served_method`` is the formula best calibrated over the pooled entities; the threshold
    tables are in its scores.
    """
    pooled = CalibrationSet(
        corpus="all",
        entities=[e for s in sets for e in s.entities],
        gold=sum(s.gold for s in sets),
        sentences=sum(s.sentences for s in sets),
    )
    served = served_method(pooled.entities)
    summary: dict[str, object] = {"served_method": served, "bins": BINS}
    for item in [*sets, pooled]:
        summary[item.corpus] = {
            "sentences": item.sentences,
            "gold_entities": item.gold,
            "predicted_entities": len(item.entities),
            "methods": {
                method: {
                    "ece": round(expected_calibration_error(item.entities, method), 4),
                    "brier": round(brier_score(item.entities, method), 4),
                }
                for method in SCORE_METHODS
            },
            "thresholds": [
                {k: round(v, 4) for k, v in row.items()}
                for row in threshold_table(item.entities, item.gold, served)
            ],
            "reliability": {
                method: reliability_bins(item.entities, method) for method in SCORE_METHODS
            },
        }
    return summary


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def markdown_report(summary: dict[str, object], corpora: Sequence[str]) -> str:
    """Return the calibration tables as markdown (per corpus and pooled)."""
    names = [*corpora, "all"]
    methods = list(SCORE_METHODS)
    head = "| corpus | sentences | gold | predicted | " + " | ".join(
        f"ECE {m} | Brier {m}" for m in methods
    )
    lines = [
        f"Engine: {summary.get('engine', '?')}; model: `{summary.get('model', '?')}`; "
        f"ECE over {summary['bins']} equal-width bins. Served score: "
        f"`{summary['served_method']}`.",
        "",
        head + " |",
        "|" + "---|" * (4 + 2 * len(methods)),
    ]
    for name in names:
        item: Any = summary[name]
        cells = [
            name,
            str(item["sentences"]),
            str(item["gold_entities"]),
            str(item["predicted_entities"]),
        ]
        for method in methods:
            cells += [
                f"{item['methods'][method]['ece']:.3f}",
                f"{item['methods'][method]['brier']:.3f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Precision of the entities kept and recall over all gold entities, by MIN_SCORE "
        f"(`{summary['served_method']}`):",
        "",
        "| MIN_SCORE | " + " | ".join(f"{n} P / R (kept)" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    thresholds = [row["threshold"] for row in summary["all"]["thresholds"]]  # type: ignore[index]
    for index, threshold in enumerate(thresholds):
        cells = [f"{threshold:.2f}"]
        for name in names:
            row = summary[name]["thresholds"][index]  # type: ignore[index]
            cells.append(
                f"{row['precision'] * 100:.1f} / {row['recall'] * 100:.1f} ({row['kept']})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
