"""``instructner adapt``: teach a model folder a user's own entity types from a small file."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from instructner.research.adapt import adapt

HELP = (
    "fine-tune a model folder on a few annotated sentences of your own types (JSONL with "
    "character spans, or CoNLL/BIO columns) and write a model folder make serve serves"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``adapt``."""
    parser.add_argument(
        "--model", type=Path, default=Path("models/default"), help="model folder to start from"
    )
    parser.add_argument(
        "--train",
        required=True,
        type=Path,
        help='annotated sentences: JSONL lines {"text": ..., "entities": [{"start", "end", '
        '"label"}]} (.jsonl) or CoNLL/BIO token-tag columns (anything else)',
    )
    parser.add_argument(
        "--format", choices=("auto", "jsonl", "bio"), default="auto", help="of --train"
    )
    parser.add_argument(
        "--labels",
        required=True,
        help="the word for each type of the file: TYPE=word,... (DRUG=drug,DOSE=dosage) or "
        "words that are their own types (drug,dosage)",
    )
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument(
        "--no-aux",
        action="store_true",
        help="train NER only (default: NER plus the extraction and typing tasks)",
    )
    parser.add_argument(
        "--no-replay",
        action="store_true",
        help="do not mix in the base model's training corpora (default: when at hand)",
    )
    parser.add_argument(
        "--data-root", type=Path, help="corpora to replay (default: INSTRUCTNER_DATA_ROOT)"
    )
    parser.add_argument(
        "--replay-share",
        type=float,
        default=1.0,
        metavar="R",
        help="replay sentences per sentence of yours (default 1: docs/adapt.md measured 1 and 4)",
    )
    parser.add_argument("--steps", type=int, help="training steps (default: from the data size)")
    parser.add_argument(
        "--learning-rate",
        type=float,
        metavar="LR",
        help="peak learning rate (default 5e-4; a base that has never seen your kind of types "
        "learns faster at 1e-3, docs/adapt.md)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Adapt, write the model folder and its card, print the report as JSON."""
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    if args.learning_rate is not None and not 0 < args.learning_rate < 1:
        raise ValueError(f"--learning-rate must be in (0, 1), got {args.learning_rate}")
    if args.replay_share <= 0:
        raise ValueError(f"--replay-share must be positive, got {args.replay_share}")
    report = adapt(
        args.model,
        args.train,
        args.labels,
        args.out,
        auxiliary=not args.no_aux,
        replay=not args.no_replay,
        data_root=args.data_root,
        seed=args.seed,
        steps=args.steps,
        learning_rate=args.learning_rate,
        fmt=args.format,
        progress=not args.quiet,
        replay_share=args.replay_share,
    )
    sys.stdout.write(json.dumps(asdict(report)) + "\n")
    return 0
