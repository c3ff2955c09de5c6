"""Markdown table rows and the cells in them: numbers, milliseconds, percentages, load."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def row(cells: Sequence[str]) -> str:
    """Return one markdown table row of ``cells``."""
    return "| " + " | ".join(cells) + " |"


def ms(us: float | None) -> str:
    """Return microseconds as whole milliseconds, – if missing."""
    return "–" if us is None else f"{us / 1000:.0f}"


def num(value: float | None, digits: int = 1) -> str:
    """Return ``value`` with ``digits`` decimals, – if missing."""
    return "–" if value is None else f"{value:.{digits}f}"


def pct(value: float | None, digits: int = 2) -> str:
    """Return a fraction as a percentage, – if missing."""
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def others(load: Mapping[str, Any] | None) -> str:
    """Return the share of the machine other processes used, in percent."""
    if not load or "others" not in load:
        return "–"
    return f"{load['others'] * 100:.0f}"
