"""``instructner tokenizer``: train the task tokenizer (SentencePiece unigram, byte fallback)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from instructner.method.labels import CORPORA
from instructner.research.vocab import DEFAULT_VOCAB_SIZE, build_task_tokenizer

HELP = (
    "train a task tokenizer (SentencePiece unigram, case kept, byte fallback) on the corpora's "
    "train splits, the prompt templates and the label words; writes a T5 tokenizer folder"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``tokenizer``."""
    parser.add_argument("--out", required=True, type=Path, help="folder to write the files to")
    parser.add_argument(
        "--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, help="pieces (default: %(default)s)"
    )
    parser.add_argument(
        "--corpora",
        nargs="+",
        choices=CORPORA,
        default=list(CORPORA),
        help="train splits to learn from (default: all four)",
    )
    parser.add_argument("--data-root", help="folder of the shipped corpora")


def run(args: argparse.Namespace) -> int:
    """Train and write the tokenizer, then print its folder and size as JSON."""
    out = build_task_tokenizer(args.out, args.vocab_size, args.corpora, args.data_root)
    sys.stdout.write(json.dumps({"out": str(out), "vocab_size": args.vocab_size}) + "\n")
    return 0
