"""Forgetting: the four test sets' F1 of model folders side by side (before and after adapting).

Each model runs the serving pipeline in-process (:class:`instructner.serving.pipeline.Pipeline`
over its CTranslate2 int8 conversion, its calibrated score formula, one thread): every test
sentence of CoNLL-2003, MIT Movie, MIT Restaurant and ATIS with the corpus's label words,
scored strictly (span and type) against the gold spans. Writes ``forgetting.json`` and
``forgetting.md`` to ``--out``.

Usage: ``python -m bench.forgetting --models models/default DIR ... --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructner.method.confidence import served_score_method
from instructner.method.labels import get_verbalizer
from instructner.research.data import load_corpus
from instructner.research.metrics import score_spans
from instructner.serving.engine import CTranslate2Engine
from instructner.serving.pipeline import Pipeline, Query
from instructner.serving.tokenizer import PromptTokenizer

CORPORA = ("conll2003", "mit_movie", "mit_restaurant", "atis")


def corpus_f1(pipeline: Pipeline, corpus: str, limit: int | None) -> dict[str, Any]:
    """Return one corpus's strict test F1 (and counts) for ``pipeline``."""
    sentences = load_corpus(corpus, "test")[:limit]
    verbalizer = get_verbalizer(corpus)
    labels = tuple(verbalizer.words)
    results = []
    for begin in range(0, len(sentences), 64):
        batch = sentences[begin : begin + 64]
        results.extend(pipeline.run_many([Query(s.text, "ner", labels) for s in batch]))
    gold = [[(e.start, e.end, str(e.label)) for e in s.char_spans()] for s in sentences]
    predicted = [
        [(e.start, e.end, verbalizer.tag(e.label)) for e in result.entities] for result in results
    ]
    scores = score_spans(gold, predicted)
    return {
        "sentences": len(sentences),
        "f1": round(scores.f1, 4),
        "precision": round(scores.precision, 4),
        "recall": round(scores.recall, 4),
    }


def open_pipeline(model: Path) -> tuple[Pipeline, CTranslate2Engine]:
    """Return the served pipeline of one model folder (int8, one thread) and its engine."""
    engine = CTranslate2Engine(model / "ctranslate2", compute_type="int8", inter_threads=1)
    pipeline = Pipeline(
        engine, PromptTokenizer(model), score_method=served_score_method(model), chunk_size=64
    )
    return pipeline, engine


def evaluate_model(model: Path, limit: int | None) -> dict[str, Any]:
    """Return every corpus's test F1 of one model folder."""
    pipeline, engine = open_pipeline(model)
    started = time.monotonic()
    try:
        corpora = {corpus: corpus_f1(pipeline, corpus, limit) for corpus in CORPORA}
    finally:
        engine.close()
    return {"model": str(model), "corpora": corpora, "seconds": round(time.monotonic() - started)}


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Return the table: one row per model, one column per corpus."""
    lines = [
        "| model | " + " | ".join(CORPORA) + " |",
        "|---|" + "---:|" * len(CORPORA),
    ]
    for row in rows:
        cells = [f"{row['corpora'][c]['f1']:.3f}" for c in CORPORA]
        lines.append(f"| `{row['model']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate every model and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", nargs="+", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, help="first N test sentences per corpus")
    args = parser.parse_args(argv)
    rows = []
    for model in args.models:
        rows.append(evaluate_model(model, args.limit))
        print(f"[forgetting] {model}: {rows[-1]['corpora']}", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "forgetting.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (args.out / "forgetting.md").write_text(markdown(rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
