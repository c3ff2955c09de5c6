"""``instructner aliases``: write the model folder's WordNet table of callers' label words."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = (
    "map every WordNet noun near a label word the model knows onto that word "
    "(label-aliases.json in the model folder, read by the server)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``aliases``."""
    parser.add_argument("--model", required=True, type=Path, help="model folder")
    parser.add_argument(
        "--show", nargs="*", default=[], metavar="WORD", help="print the alias of these words"
    )


def run(args: argparse.Namespace) -> int:
    """Write the table and print its size (and the asked words' aliases)."""
    from instructner.method.label_aliases import load_aliases, resolve_labels, write_aliases
    from instructner.method.model_info import known_words

    if not (args.model / "config.json").is_file():
        raise FileNotFoundError(f"{args.model} is not a model folder: config.json is missing")
    path = write_aliases(args.model, known_words(args.model))
    aliases = load_aliases(args.model)
    shown = dict(zip(args.show, resolve_labels(aliases, args.show), strict=True))
    sys.stdout.write(json.dumps({"file": str(path), "aliases": len(aliases), **shown}) + "\n")
    return 0
