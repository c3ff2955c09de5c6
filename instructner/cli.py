"""The ``instructner`` command line: one subcommand per module under ``instructner.commands``.

Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# subcommand -> module under instructner.commands exposing HELP, add_arguments(parser), run(args)
SUBCOMMANDS = (
    "parse",
    "score",
    "evaluate",
    "evaluate-all",
    "calibrate",
    "train",
    "ablate",
    "export",
    "average",
    "tokenizer",
    "robustness",
    "aliases",
    "convert",
    "adapt",
)
# subcommand -> module whose main(argv) has its own options (the serving tools); the
# arguments after the subcommand go to it unchanged, --help included.
DELEGATED = {
    "build": ("instructner.deploy.build", "fill the CPU model repository (make engines)"),
    "serve": ("instructner.deploy.server", "build if needed and serve with tritonserver"),
    "build-trtllm": (
        "instructner.deploy.build_trtllm",
        "TensorRT-LLM engines and the GPU repository (make engines-trtllm)",
    ),
    "proxy": ("instructner.deploy.proxy", "nginx in front of a running server (make proxy)"),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="instructner",
        description="InstructionNER: prompts, answer parsing, scoring, training and evaluation.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"instructner.commands.{name.replace('-', '_')}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[arguments[0]][0])
        program, sys.argv[0] = sys.argv[0], f"instructner {arguments[0]}"  # usage names it
        try:
            return int(module.main(arguments[1:]))
        finally:
            sys.argv[0] = program
    parser = build_parser()
    args = parser.parse_args(arguments)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args))
    except (ValueError, FileNotFoundError) as exc:
        logging.getLogger("instructner").error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
