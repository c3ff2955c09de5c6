"""The command line: ``python -m bench.report DIR [--publish OUT]`` (:func:`main`)."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from bench.plot import SCALING_PLOTS
from bench.report.figures import PLOT
from bench.report.markdown import markdown_table
from bench.report.ratios import compute_ratios


def main(argv: Sequence[str] | None = None) -> int:
    """Print (or publish) the markdown table of a results folder.

    ``python -m bench.report DIR`` prints it; ``--publish OUT`` copies the table, the plot and
    summary.json into OUT (a tracked folder such as ``bench/published``) with the image link
    written as ``--image-link`` (the plot's path as seen from the README that embeds it).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.report", description="Markdown table of a benchmark run."
    )
    parser.add_argument("results", type=Path, help="bench/results/<timestamp>-<profile>")
    parser.add_argument("--publish", type=Path, help="copy table, plots and summary here")
    parser.add_argument("--image-link", default=PLOT, help=f"image link (default {PLOT})")
    args = parser.parse_args(argv)
    summary = json.loads((args.results / "summary.json").read_text(encoding="utf-8"))
    table = markdown_table(summary, args.image_link)
    if args.publish:
        args.publish.mkdir(parents=True, exist_ok=True)
        for name in (PLOT, *SCALING_PLOTS.values()):
            if (args.results / name).is_file():
                shutil.copy2(args.results / name, args.publish / name)
        # the published summary carries the ratios and target checks the table shows
        published = {**summary, "ratios": compute_ratios(summary)}
        (args.publish / "summary.json").write_text(
            json.dumps(published, indent=2) + "\n", encoding="utf-8"
        )
        (args.publish / "table.md").write_text(table, encoding="utf-8")
    print(table)
    return 0
