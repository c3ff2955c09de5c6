"""``instructner convert``: add the CTranslate2 conversion of its weights to a model folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = (
    "convert the model folder's weights to CTranslate2 into <model>/ctranslate2, so that "
    "serving it converts nothing and needs no torch"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``convert``."""
    parser.add_argument("--model", required=True, type=Path, help="model folder")


def run(args: argparse.Namespace) -> int:
    """Write the conversion and print where it went and its size."""
    from instructner.serving.engine import write_shipped_conversion

    if not (args.model / "config.json").is_file():
        raise FileNotFoundError(f"{args.model} is not a model folder: config.json is missing")
    folder = write_shipped_conversion(args.model)
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    sys.stdout.write(json.dumps({"conversion": str(folder), "bytes": size}) + "\n")
    return 0
