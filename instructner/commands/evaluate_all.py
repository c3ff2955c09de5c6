"""``instructner evaluate-all``: every shipped corpus, into ``MODEL/metrics.json``.

Runs ``instructner evaluate`` (the command users run) on the test split, and on the dev split
(CoNLL-2003, ATIS) or the held-out train slice (MIT corpora), of each corpus, plus entity
typing given the gold entities on the first test sentences, and collects strict micro P/R/F1
into the JSON file that the model card and its tests read (``make evaluate-default``). The
per-sentence predictions stay under ``--work-dir``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from instructner.method.labels import CORPORA

HELP = (
    "evaluate a model on every shipped corpus (test and dev splits, typing accuracy) and "
    "write MODEL/metrics.json (make evaluate-default)"
)
TYPING_SENTENCES = 300
KEYS = ("precision", "recall", "f1", "tp", "fp", "fn", "sentences", "unfinished_answers")
TYPING_KEYS = ("accuracy", "gold_entities", "correct", "typed_entities")
logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``evaluate-all``."""
    parser.add_argument("--model", type=Path, required=True, help="HF T5 checkpoint directory")
    parser.add_argument(
        "--work-dir", type=Path, default=Path("runs/eval"), help="predictions (runs/eval)"
    )
    parser.add_argument("--splits", default="test,dev", help="comma-separated (test,dev)")
    parser.add_argument("--batch-size", type=int, default=64, help="generation batch (64)")
    parser.add_argument(
        "--typing-sentences",
        type=int,
        default=TYPING_SENTENCES,
        help=f"test sentences per corpus for typing accuracy ({TYPING_SENTENCES}; 0 skips)",
    )
    parser.add_argument("--data-root", help="folder of the shipped corpora")
    parser.add_argument(
        "--limit", type=int, help="only the first N sentences of each split (a quick check)"
    )


def _evaluate(argv: list[str], out: Path) -> dict[str, Any]:
    from instructner.cli import main as instructner_main  # the same command users run

    code = instructner_main([*argv, "--output-dir", str(out)])
    if code != 0:
        raise SystemExit(f"instructner {' '.join(argv)} failed with exit code {code}")
    metrics: dict[str, Any] = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return metrics


def run(args: argparse.Namespace) -> int:
    """Evaluate every corpus and split, write the collected metrics JSON; exit code."""
    extra = ["--batch-size", str(args.batch_size)]
    if args.data_root:
        extra += ["--data-root", args.data_root]
    ner_extra = [*extra, "--limit", str(args.limit)] if args.limit else extra
    result: dict[str, Any] = {
        "model": str(args.model),
        "command": f"instructner evaluate --model {args.model} --dataset conll2003 --split test "
        f"--batch-size {args.batch_size}",
        "decoding": "greedy, at most 128 new tokens, prompt options in corpus label order",
    }
    for split in args.splits.split(","):
        result[split] = {}
        for corpus in CORPORA:
            started = time.monotonic()
            argv = ["evaluate", "--model", str(args.model), "--dataset", corpus, "--split", split]
            metrics = _evaluate([*argv, *ner_extra], args.work_dir / f"{corpus}-{split}")
            result[split][corpus] = {
                **{k: metrics[k] for k in KEYS},
                "recall_by_novelty": metrics["recall_by_novelty"],
                "seconds": round(time.monotonic() - started, 1),
            }
            logger.info("%s %s: F1 %.4f", corpus, split, metrics["f1"])
    if args.typing_sentences > 0:
        # Typing given the gold entities on the first test sentences of each corpus
        # (accuracy over their gold entities; the full splits take ~25 min on 2 cores).
        result["typing_test"] = {"sentences_per_corpus": args.typing_sentences}
        for corpus in CORPORA:
            argv = ["evaluate", "--model", str(args.model), "--dataset", corpus, "--split", "test"]
            argv += ["--task", "type", "--limit", str(args.typing_sentences), *extra]
            typing = _evaluate(argv, args.work_dir / f"{corpus}-test-type")
            result["typing_test"][corpus] = {k: typing[k] for k in TYPING_KEYS}
    text = json.dumps(result, indent=2) + "\n"
    (args.model / "metrics.json").write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0
