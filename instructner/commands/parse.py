"""``instructner parse``: turn a model answer sentence into entities with character offsets."""

from __future__ import annotations

import argparse
import json
import sys

from instructner.method.parser import parse_answer
from instructner.method.prompts import TASKS

HELP = "parse a model answer into entities (JSON list of text, label, start, end)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``parse``."""
    parser.add_argument("--sentence", required=True, help="the input sentence the answer is about")
    parser.add_argument("--answer", required=True, help="the model's answer sentence")
    parser.add_argument(
        "--task", choices=TASKS, default="ner", help="which task the answer belongs to (ner)"
    )
    # Repeated, never comma-separated: a label word may itself contain a comma.
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="L",
        help="an option label word; repeat for each option (ner and type)",
    )
    parser.add_argument(
        "--entity",
        action="append",
        default=[],
        metavar="E",
        help="an entity word given to the typing task; repeat for each (type only)",
    )


def _check_options(task: str, labels: list[str], entities: list[str]) -> None:
    """Reject option combinations the task cannot use, instead of ignoring them."""
    if any(not label.strip() for label in labels):
        raise ValueError("--label must not be empty")
    if any(not entity.strip() for entity in entities):
        raise ValueError("--entity must not be empty")
    if task in ("ner", "type") and not labels:
        raise ValueError(f"--task {task} needs at least one --label")
    if task == "extract" and labels:
        raise ValueError("--task extract takes no --label: extraction answers have no types")
    if task == "type" and not entities:
        raise ValueError("--task type needs at least one --entity")
    if task != "type" and entities:
        raise ValueError(f"--entity is only for --task type, not --task {task}")


def run(args: argparse.Namespace) -> int:
    """Parse the answer and print the entities as a JSON list."""
    _check_options(args.task, args.label, args.entity)
    entities = parse_answer(
        args.task, args.answer, args.sentence, labels=args.label, entities=args.entity
    )
    sys.stdout.write(json.dumps([entity.to_dict() for entity in entities]) + "\n")
    return 0
