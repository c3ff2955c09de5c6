"""The host's speed probe: its spread over the run and whether it moved around two phases.

Before (and after) each phase the benchmark times a fixed single-threaded loop in a process
of its own (``speed_probe`` in ``load``); a ratio of throughputs measured at two host speeds
says nothing of the server.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

# spread of the speed probe (10th to 90th percentile over the phases) that the table calls
# out; the probe's own scatter on a quiet machine is about ±5%, with rare single outliers
SPEED_DRIFT_WARNING = 0.20


def speed_moved(load: Mapping[str, Any], phases: Sequence[str]) -> tuple[float, float] | None:
    """Return (lowest, highest) speed probe around ``phases`` when they differ too much.

    Every probe before and after each phase counts; None when the spread is within
    :data:`SPEED_DRIFT_WARNING` or no phase carries a probe.
    """
    speeds = [
        float(record[key])
        for name in phases
        if isinstance(record := load.get(name), Mapping)
        for key in ("speed_probe", "speed_probe_end")
        if key in record
    ]
    if not speeds or min(speeds) <= 0:
        return None
    low, high = min(speeds), max(speeds)
    return (low, high) if high / low - 1 > SPEED_DRIFT_WARNING else None


def speed_spread(load: Mapping[str, Any]) -> dict[str, float] | None:
    """Return the speed probes of ``load``: count, lowest, 10th percentile, median, 90th.

    None when no phase carries a probe (runs before the probe existed).
    """
    speeds = sorted(
        r["speed_probe"] for r in load.values() if isinstance(r, Mapping) and "speed_probe" in r
    )
    if not speeds:
        return None

    def at(share: float) -> float:
        return float(speeds[round(share * (len(speeds) - 1))])

    return {
        "phases": len(speeds),
        "lowest": float(speeds[0]),
        "p10": at(0.1),
        "median": float(statistics.median(speeds)),
        "p90": at(0.9),
    }


def speed_note(load: Mapping[str, Any]) -> str:
    """Return the report's sentence on the host's speed over the run ("" without probes)."""
    spread = speed_spread(load)
    if spread is None:
        return ""
    drift = spread["p90"] / spread["p10"] - 1 if spread["p10"] > 0 else float("inf")
    note = (
        f" The machine's own speed before each of {spread['phases']:.0f} phases (the best of "
        "three 0.05 s single-threaded probes in a process of their own, `speed_probe` in "
        "`load`; other processes cannot show a slower host): median "
        f"{spread['median']:.1f} M steps/s, 10th–90th percentile {spread['p10']:.1f}–"
        f"{spread['p90']:.1f} (a spread of {drift * 100:.0f}%), lowest {spread['lowest']:.1f}."
    )
    if drift > SPEED_DRIFT_WARNING:
        note += (
            f" **Its speed moved by more than {SPEED_DRIFT_WARNING * 100:.0f}% during the run: "
            "ratios between paths measured at different times carry that drift.**"
        )
    return note
