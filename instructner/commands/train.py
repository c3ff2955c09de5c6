"""``instructner train``: train a T5 InstructionNER model from a YAML config."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from instructner.research.training import Trainer, load_config

HELP = "train a T5 InstructionNER model (multi-corpus, multitask) from a YAML config"

logger = logging.getLogger(__name__)

# flag -> config key, for the keys most often changed from the command line
_FLAG_KEYS = {
    "output_dir": "output_dir",
    "data_root": "data_root",
    "init_from": "init_from",
    "max_steps": "max_steps",
    "max_minutes": "max_minutes",
    "seed": "seed",
    "device": "device",
    "batch_size": "batch_size",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``train``."""
    parser.add_argument("--config", required=True, type=Path, help="YAML training config")
    parser.add_argument("--output-dir", help="run folder (config: output_dir)")
    parser.add_argument("--data-root", help="folder of the shipped corpora (config: data_root)")
    parser.add_argument("--init-from", help="HF T5 checkpoint to fine-tune (config: init_from)")
    parser.add_argument("--max-steps", type=int, help="optimizer steps (config: max_steps)")
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this many minutes of this invocation (config: max_minutes)",
    )
    parser.add_argument("--seed", type=int, help="random seed (config: seed)")
    parser.add_argument("--device", help="auto, cpu or cuda[:N] (config: device)")
    parser.add_argument("--batch-size", type=int, help="micro-batch size (config: batch_size)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any top-level config key; VALUE is read as YAML (--set tasks=[ner])",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue exactly from OUTPUT_DIR/last (model, optimizer, schedule, data position)",
    )


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Collect config overrides from ``--set`` items and the named flags (flags win).

    Raises:
        ValueError: a ``--set`` item is not ``KEY=VALUE`` or its value is not valid YAML.

    """
    values: dict[str, Any] = {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        try:
            values[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ValueError(f"--set {item!r}: value is not valid YAML: {exc}") from None
    for flag, key in _FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None:
            values[key] = value
    return values


def run(args: argparse.Namespace) -> int:
    """Train, then print the final state (step, best dev F1) as JSON.

    Exit code 128 + the signal number when SIGTERM/SIGINT stopped the run (its state is
    saved): a script running stages in order must not start the next one.
    """
    config = load_config(args.config, overrides(args))
    trainer = Trainer(config, resume=args.resume)
    state = trainer.train()
    result = {
        "output_dir": config.output_dir,
        "step": state.step,
        "best_f1": state.best_f1 if state.best_step >= 0 else None,
        "best_step": state.best_step if state.best_step >= 0 else None,
        "elapsed_s": round(state.elapsed_s, 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    if trainer.stopped_by_signal is not None:
        return 128 + trainer.stopped_by_signal
    return 0
