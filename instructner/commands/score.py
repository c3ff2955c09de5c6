"""``instructner score``: strict span-level P/R/F1 of a predicted BIO file against a gold one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from instructner.research.data import FORMATS, read_sentences
from instructner.research.metrics import score_sentences

HELP = "score predicted BIO tags against gold tags (strict span-level micro and per-type P/R/F1)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``score``."""
    parser.add_argument("--gold", required=True, type=Path, help="gold file (or seqio folder)")
    parser.add_argument("--pred", required=True, type=Path, help="predicted file, same sentences")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="format of both files (default: auto, guessed from name and content); for seqio "
        "the path names seq.in or its folder, for words the .words/.ner file or their stem",
    )


def run(args: argparse.Namespace) -> int:
    """Read both files, check they hold the same tokens, and print the scores as JSON."""
    gold = read_sentences(args.gold, args.format)
    pred = read_sentences(args.pred, args.format)
    scores = score_sentences(gold, pred)
    sys.stdout.write(json.dumps(scores.to_dict(), indent=2) + "\n")
    return 0
