"""``instructner robustness``: F1 on the test sets as callers write text and label words."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from instructner.labels import CORPORA

HELP = (
    "rewrite the test sets as callers write them (natural text, accents, case, their own "
    "label words, other option lists), run them through the serving pipeline and print F1 "
    "per corpus and variant"
)
logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``robustness``."""
    from instructner.robustness import VARIANTS

    parser.add_argument("--model", required=True, type=Path, help="model folder (HF T5)")
    parser.add_argument(
        "--variant",
        action="append",
        choices=VARIANTS,
        help="a variant (repeatable; default: all): " + ", ".join(VARIANTS),
    )
    parser.add_argument(
        "--dataset", action="append", choices=CORPORA, help="a corpus (repeatable; default: all)"
    )
    parser.add_argument("--split", choices=("dev", "test"), default="test", help="split (test)")
    parser.add_argument("--data-root", type=Path, help="folder of the shipped corpora")
    parser.add_argument("--limit", type=int, help="only the first N sentences of each corpus")
    parser.add_argument(
        "--raw-text",
        action="store_true",
        help="the model reads the caller's text unchanged (no accent folding or punctuation "
        "splitting): measures what the served text view does",
    )
    parser.add_argument(
        "--engine",
        choices=("ctranslate2", "transformers"),
        default="ctranslate2",
        help="ctranslate2: int8, as served (default); transformers: float32 reference",
    )
    parser.add_argument("--threads", type=int, default=0, help="engine threads (0: default)")
    parser.add_argument("--output", type=Path, help="write robustness.json and robustness.md here")


def _pipeline(args: argparse.Namespace, scratch: Path) -> Any:
    from instructner.confidence import served_score_method
    from instructner.engine import convert_to_ctranslate2, load_engine
    from instructner.serving.pipeline import Pipeline
    from instructner.serving.tokenizer import PromptTokenizer

    if args.engine == "ctranslate2":
        engine_dir = convert_to_ctranslate2(args.model, scratch / "ctranslate2")
        engine = load_engine("ctranslate2", engine_dir, intra_threads=args.threads)
    else:
        engine = load_engine("transformers", args.model, threads=args.threads or None)
    return Pipeline(
        engine,
        PromptTokenizer(args.model),
        scores=False,
        score_method=served_score_method(args.model),
    )


def markdown_table(results: dict[str, dict[str, dict[str, Any]]], variants: list[str]) -> str:
    """Return F1 per variant (rows) and corpus (columns), with the gap to ``plain``."""
    corpora = list(results)
    lines = [
        "| variant | " + " | ".join(corpora) + " |",
        "|---|" + "---|" * len(corpora),
    ]
    for variant in variants:
        cells = []
        for corpus in corpora:
            f1 = results[corpus][variant]["f1"]
            plain = results[corpus].get("plain", {}).get("f1")
            gap = "" if plain is None or variant == "plain" else f" ({f1 - plain:+.1f})"
            cells.append(f"{f1:.1f}{gap}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Build each variant's cases, score them through the pipeline, print the table."""
    from instructner import textview
    from instructner.data import load_corpus
    from instructner.robustness import VARIANTS, make_case
    from instructner.robustness_run import score_cases

    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    variants = list(dict.fromkeys(args.variant or VARIANTS))
    corpora = list(dict.fromkeys(args.dataset or CORPORA))
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="instructner-robustness-") as scratch:
        pipeline = _pipeline(args, Path(scratch))
        for corpus in corpora:
            sentences = load_corpus(corpus, args.split, args.data_root)[: args.limit]
            results[corpus] = {}
            for variant in variants:
                cases = [make_case(s, corpus, variant, i) for i, s in enumerate(sentences)]
                if args.raw_text:
                    with textview.raw_text():
                        counts = score_cases(pipeline, cases, progress=f"{corpus} {variant}")
                else:
                    counts = score_cases(pipeline, cases, progress=f"{corpus} {variant}")
                results[corpus][variant] = counts.to_dict()
                logger.info("%s %s: F1 %.2f", corpus, variant, counts.to_dict()["f1"])
        pipeline.engine.close()
    table = markdown_table(results, variants)
    report = {
        "model": str(args.model),
        "engine": args.engine,
        "text_view": "raw" if args.raw_text else "folded",
        "split": args.split,
        "limit": args.limit,
        "results": results,
    }
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "robustness.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.output / "robustness.md").write_text(table)
    sys.stdout.write(table)
    return 0
