"""``instructner average``: the mean of several checkpoints' weights as a model folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from instructner.research.averaging import average_checkpoints
from instructner.research.export import DTYPES

HELP = (
    "average the weights of checkpoints of one model (same architecture, tokenizer and tasks) "
    "into a shippable model folder"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``average``."""
    parser.add_argument(
        "--models", required=True, nargs="+", type=Path, help="two or more model folders"
    )
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument(
        "--dtype", choices=tuple(DTYPES), default="float16", help="weight dtype (float16)"
    )


def run(args: argparse.Namespace) -> int:
    """Average, then print the shard sizes as JSON."""
    report = average_checkpoints(args.models, args.out, args.dtype)
    result = {"out": str(report.directory), "shards": report.shards, "total": report.total_bytes}
    sys.stdout.write(json.dumps(result) + "\n")
    return 0
