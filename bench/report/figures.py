"""The report's figures: the main plot's name and the markdown of a figure the run wrote."""

from __future__ import annotations

from collections.abc import Mapping

from bench.report.summary_lookups import Summary

PLOT = "throughput_vs_p99.png"


def _sibling(image_link: str, name: str) -> str:
    """Return the link of another image in the main plot's folder."""
    if name == PLOT:
        return image_link
    folder, slash, _ = image_link.rpartition("/")
    return f"{folder}{slash}{name}"


def plot_written(summary: Summary, name: str, has_data: bool) -> bool:
    """Say whether the run wrote figure ``name``.

    A summary records its figures in ``plots.written``; an older one does not, and drew a
    figure whenever it had data for it (``has_data``).
    """
    plots = summary.get("plots")
    if isinstance(plots, Mapping) and "written" in plots:
        return name in plots["written"]
    return has_data


def image(
    summary: Summary, alt: str, image_link: str, name: str, has_data: bool, heading: str = ""
) -> list[str]:
    """Return the markdown of figure ``name`` (after ``heading``), none if it was not written."""
    if not plot_written(summary, name, has_data):
        return []
    return ([heading, ""] if heading else []) + [f"![{alt}]({_sibling(image_link, name)})", ""]
