"""The whole markdown report of a run: every section, in order (:func:`markdown_table`)."""

from __future__ import annotations

from bench.plot import SCALING_PLOTS
from bench.report.figures import PLOT, image
from bench.report.limit_tables import limit_section
from bench.report.ratios import compute_ratios
from bench.report.scaling_tables import scaling_section
from bench.report.served_table import (
    inprocess_table,
    opening_lines,
    ratio_lines,
    scores_cost_lines,
    served_table,
)
from bench.report.summary_lookups import Summary


def markdown_table(summary: Summary, image_link: str = PLOT) -> str:
    """Return the README's performance section (markdown) for one run."""
    # recomputed from the raw measurements, so a published run is re-read with today's targets
    ratios = compute_ratios(summary)
    lines = opening_lines(summary)
    lines += served_table(summary)
    lines += scores_cost_lines(ratios)
    lines += inprocess_table(summary, ratios)
    lines += ratio_lines(summary, ratios)
    lines += image(summary, "throughput vs p99 latency", image_link, PLOT, True)
    lines += scaling_section(summary, image_link)
    scaling = summary.get("scaling")
    lines += image(
        summary,
        "throughput and latency against concurrency",
        image_link,
        SCALING_PLOTS["concurrency"],
        bool(scaling) and bool(summary["served"]["levels"]),
        "**Scaling with concurrency**: the served table above, as curves.",
    )
    lines += limit_section(summary)
    return "\n".join(lines)
