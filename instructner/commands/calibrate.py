"""``instructner calibrate``: how well entity scores predict correctness, on dev splits."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from instructner.commands.evaluate import HOLDOUT_DEV
from instructner.method.confidence import SCORE_METHODS
from instructner.method.labels import CORPORA, get_verbalizer
from instructner.research.calibration import (
    CalibrationSet,
    markdown_report,
    score_sentences,
    summarize,
)
from instructner.research.data import holdout_split, load_corpus
from instructner.serving.engine import (
    CTranslate2Engine,
    Engine,
    TransformersEngine,
    convert_to_ctranslate2,
)
from instructner.serving.tokenizer import PromptTokenizer, tokenizer_dir_for

HELP = (
    "score every entity the served path returns on dev splits and measure calibration "
    "(ECE, Brier, reliability diagram, precision/recall against threshold); writes "
    "calibration.json, calibration.md, thresholds.csv and two PNGs"
)
logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``calibrate``."""
    parser.add_argument("--model", required=True, type=Path, help="HF T5 checkpoint directory")
    parser.add_argument("--out", required=True, type=Path, help="folder for JSON, CSV and PNGs")
    parser.add_argument(
        "--corpora", default=",".join(CORPORA), help="comma-separated (default: all four)"
    )
    parser.add_argument("--data-root", type=Path, help="folder of the shipped corpora")
    parser.add_argument("--limit", type=int, help="only the first N dev sentences per corpus")
    parser.add_argument(
        "--engine",
        choices=("ctranslate2", "transformers"),
        default="ctranslate2",
        help="the served CPU engine (default) or the transformers reference",
    )
    parser.add_argument(
        "--compute-type", choices=("int8", "float32"), default="int8", help="CTranslate2 (int8)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="generation batch (64)")


def _dev_sentences(corpus: str, data_root: Path | None) -> list:
    if corpus in HOLDOUT_DEV:  # the slice training holds out (fraction 0.1, seed 0)
        return holdout_split(load_corpus(corpus, "train", data_root), 0.1, 0)[1]
    return load_corpus(corpus, "dev", data_root)


def run(args: argparse.Namespace) -> int:
    """Score, summarize, write calibration.json, thresholds.csv and the plots."""
    from instructner.research.calibration_plots import plot_precision_recall, plot_reliability

    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    unknown = [c for c in corpora if c not in CORPORA]
    if unknown or not corpora:
        raise ValueError(f"unknown corpora {unknown}: expected some of {', '.join(CORPORA)}")
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    tokenizer = PromptTokenizer(tokenizer_dir_for(args.model))
    with tempfile.TemporaryDirectory() as scratch:
        engine: Engine
        if args.engine == "ctranslate2":
            converted = convert_to_ctranslate2(args.model, Path(scratch) / "ct2")
            engine = CTranslate2Engine(converted, compute_type=args.compute_type)
        else:
            engine = TransformersEngine(args.model)
        sets: list[CalibrationSet] = []
        for corpus in corpora:
            sentences = _dev_sentences(corpus, args.data_root)[: args.limit]
            sets.append(
                score_sentences(
                    engine, tokenizer, sentences, get_verbalizer(corpus), corpus, args.batch_size
                )
            )
        engine.close()
    summary = summarize(sets)
    summary["engine"] = (
        f"{args.engine} {args.compute_type}" if args.engine == "ctranslate2" else args.engine
    )
    summary["model"] = str(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
    lines = ["corpus,threshold,kept,precision,recall"]
    for corpus in [*corpora, "all"]:
        for row in summary[corpus]["thresholds"]:  # type: ignore[index]
            lines.append(
                f"{corpus},{row['threshold']},{row['kept']},{row['precision']},{row['recall']}"
            )
    (args.out / "thresholds.csv").write_text("\n".join(lines) + "\n", "utf-8")
    (args.out / "calibration.md").write_text(markdown_report(summary, corpora), "utf-8")
    plot_reliability(summary, args.out / "reliability.png")
    plot_precision_recall(summary, [*corpora, "all"], args.out / "precision-recall-threshold.png")
    table = {
        method: summary["all"]["methods"][method]  # type: ignore[index]
        for method in SCORE_METHODS
    }
    served = {"served": summary["served_method"], "all": table}
    sys.stdout.write(json.dumps(served, indent=2) + "\n")
    return 0
