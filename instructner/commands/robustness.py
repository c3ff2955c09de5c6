"""``instructner robustness``: F1 on the test sets as callers write text and label words."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from instructner.method.labels import CORPORA

HELP = (
    "rewrite the test sets as callers write them (natural text, accents, case, their own "
    "label words, other option lists), run them through the serving pipeline and print F1 "
    "per corpus and variant"
)
logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``robustness``."""
    from instructner.research.robustness import VARIANTS

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
    parser.add_argument(
        "--output",
        type=Path,
        help="write robustness.json, robustness.md and robustness.png (a plot) here",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a robustness.json of another model: the plot shows both, the table both F1s",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        help="do not evaluate: redraw the table and plot of this robustness.json",
    )


def _pipeline(args: argparse.Namespace, scratch: Path) -> Any:
    from instructner.method.confidence import served_score_method
    from instructner.serving.engine import convert_to_ctranslate2, load_engine
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


Results = dict[str, dict[str, dict[str, Any]]]


def markdown_table(results: Results, variants: list[str], baseline: Results | None = None) -> str:
    """Return F1 per variant (rows) and corpus (columns), with the gap to ``plain``.

    With ``baseline`` each cell reads ``baseline F1 -> F1 (gap to plain)``.
    """
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
            before = (baseline or {}).get(corpus, {}).get(variant, {}).get("f1")
            prefix = "" if before is None else f"{before:.1f} → "
            cells.append(f"{prefix}{f1:.1f}{gap}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: Results, variants: list[str], path: Path, baseline: Results | None) -> None:
    """Draw F1 per variant, one panel per corpus (baseline bars beside, when given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = list(results)
    figure, axes = plt.subplots(1, len(corpora), figsize=(4 * len(corpora), 4.5), sharey=True)
    axes = [axes] if len(corpora) == 1 else list(axes)
    for axis, corpus in zip(axes, corpora, strict=True):
        positions = range(len(variants))
        now = [results[corpus][v]["f1"] for v in variants]
        if baseline and corpus in baseline:
            before = [baseline[corpus].get(v, {}).get("f1", 0.0) for v in variants]
            axis.barh([p + 0.2 for p in positions], before, 0.4, label="baseline", color="#bbb")
            axis.barh([p - 0.2 for p in positions], now, 0.4, label="model", color="#2a6")
            axis.legend(loc="lower right", fontsize=8)
        else:
            axis.barh(list(positions), now, 0.6, color="#2a6")
        axis.set_yticks(list(positions), variants, fontsize=8)
        axis.invert_yaxis()
        axis.set_xlim(0, 100)
        axis.set_title(corpus)
        axis.set_xlabel("F1 (%)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run(args: argparse.Namespace) -> int:
    """Build each variant's cases, score them through the pipeline, print the table."""
    from instructner.method import textview
    from instructner.research.data import load_corpus
    from instructner.research.robustness import VARIANTS, make_case
    from instructner.research.robustness_run import score_cases

    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    baseline = None
    if args.baseline is not None:
        baseline = json.loads(args.baseline.read_text(encoding="utf-8"))["results"]
    if args.from_json is not None:
        report = json.loads(args.from_json.read_text(encoding="utf-8"))
        stored: Results = report["results"]
        variants = [v for v in VARIANTS if v in next(iter(stored.values()))]
        return _write(args, report, stored, variants, baseline)
    variants = list(dict.fromkeys(args.variant or VARIANTS))
    corpora = list(dict.fromkeys(args.dataset or CORPORA))
    results: Results = {}
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
                if args.output is not None:  # partial results survive an interrupted run
                    args.output.mkdir(parents=True, exist_ok=True)
                    partial = args.output / "robustness.partial.json"
                    partial.write_text(json.dumps({"results": results}, indent=2) + "\n")
        pipeline.engine.close()
    report = {
        "model": str(args.model),
        "engine": args.engine,
        "text_view": "raw" if args.raw_text else "folded",
        "split": args.split,
        "limit": args.limit,
        "aliases": bool(pipeline.tokenizer.label_aliases),
        "results": results,
    }
    return _write(args, report, results, variants, baseline)


def _write(
    args: argparse.Namespace,
    report: dict[str, Any],
    results: Results,
    variants: list[str],
    baseline: Results | None,
) -> int:
    table = markdown_table(results, variants, baseline)
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "robustness.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.output / "robustness.md").write_text(table)
        plot(results, variants, args.output / "robustness.png", baseline)
    sys.stdout.write(table)
    return 0
