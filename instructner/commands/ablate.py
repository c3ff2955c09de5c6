"""``instructner ablate``: the few-shot ablation, NER-only against NER + auxiliary tasks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from instructner.research.ablation import SUMMARY_MARKDOWN, load_ablation_config, run_ablation

HELP = (
    "few-shot ablation: train NER-only and NER + auxiliary-task models on the shipped K-shot "
    "splits from one YAML config and score each on test (resumable; writes results.jsonl, "
    "summary.json, summary.md)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``ablate``."""
    parser.add_argument("--config", required=True, type=Path, help="YAML ablation config")
    parser.add_argument("--output-dir", help="results folder (config: output_dir)")
    parser.add_argument("--data-root", help="folder of the shipped corpora (config: data_root)")
    parser.add_argument(
        "--test-limit", type=int, help="score only the first N test sentences (config: test_limit)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the unfinished cells, then print the summary table."""
    overrides: dict[str, Any] = {}
    for key in ("output_dir", "data_root", "test_limit"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    config = load_ablation_config(args.config, overrides)
    run_ablation(config)
    sys.stdout.write((Path(config.output_dir) / SUMMARY_MARKDOWN).read_text(encoding="utf-8"))
    return 0
