"""``instructner export``: write a checkpoint as a shippable half-precision model folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from instructner.research.export import DTYPES, MAX_SHARD_BYTES, MAX_TOTAL_BYTES, export_checkpoint

HELP = (
    "export a training checkpoint as a shippable model folder (half-precision safetensors "
    "shards within the size limits, tokenizer files, training config)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``export``."""
    parser.add_argument("--model", required=True, type=Path, help="HF T5 checkpoint to export")
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument(
        "--dtype", choices=tuple(DTYPES), default="float16", help="weight dtype (float16)"
    )
    parser.add_argument(
        "--training-config",
        type=Path,
        help="training config to copy (default: config.yaml of the run folder holding --model)",
    )
    parser.add_argument(
        "--max-shard-bytes", type=int, default=MAX_SHARD_BYTES, help="shard limit (15 MB)"
    )
    parser.add_argument(
        "--max-total-bytes", type=int, default=MAX_TOTAL_BYTES, help="total limit (60 MB)"
    )


def run(args: argparse.Namespace) -> int:
    """Export, then print the shard sizes as JSON."""
    report = export_checkpoint(
        args.model,
        args.out,
        args.dtype,
        args.training_config,
        args.max_shard_bytes,
        args.max_total_bytes,
    )
    result = {"out": str(report.directory), "shards": report.shards, "total": report.total_bytes}
    sys.stdout.write(json.dumps(result) + "\n")
    return 0
