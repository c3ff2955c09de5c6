"""Turn a run's summary into ratios, target checks, a markdown table and the final line.

Everything here is a pure function of the summary dict (what ``summary.json`` holds), so the
README table can be regenerated from a results folder: ``python -m bench.report DIR``.

Modules, by section of the report:

- :mod:`~bench.report.summary_lookups`: the model names and lookups into the summary (served
  levels, measured paths, the server's per-level statistics).
- :mod:`~bench.report.markdown_cells`: table rows and the formatting of their cells.
- :mod:`~bench.report.speed_probe`: the host's speed probe, its spread and drift.
- :mod:`~bench.report.ratios`: the targets, :func:`compute_ratios` (every ratio and target
  check), :func:`server_side_overhead` and :func:`final_line`.
- :mod:`~bench.report.figures`: the main plot's name and the markdown of a written figure.
- :mod:`~bench.report.served_table`: the opening (machine, workload, serving settings), the
  served table, the cost of entity scores, the in-process table and the ratio lines.
- :mod:`~bench.report.scaling_tables`: the document-length and label-count sweeps.
- :mod:`~bench.report.limit_tables`: the GEMM peak, achieved rates and thread layouts.
- :mod:`~bench.report.markdown`: :func:`markdown_table`, all sections in order.
- :mod:`~bench.report.cli`: :func:`main`, run by ``python -m bench.report``.
"""

from bench.report.cli import main
from bench.report.figures import PLOT, plot_written
from bench.report.limit_tables import limit_section
from bench.report.markdown import markdown_table
from bench.report.ratios import (
    best_served,
    compute_ratios,
    engine_inprocess_best,
    final_line,
    p99_c1_round_ratios,
    server_side_overhead,
    transformers_best,
)
from bench.report.scaling_tables import scaling_section
from bench.report.speed_probe import speed_moved, speed_spread

__all__ = [
    "PLOT",
    "best_served",
    "compute_ratios",
    "engine_inprocess_best",
    "final_line",
    "limit_section",
    "main",
    "markdown_table",
    "p99_c1_round_ratios",
    "plot_written",
    "scaling_section",
    "server_side_overhead",
    "speed_moved",
    "speed_spread",
    "transformers_best",
]
