"""The model names of the served table and the lookups into a run's summary dict.

Everything in :mod:`bench.report` reads the summary (what ``summary.json`` holds) through
these: the served levels of a model, one level, the measured in-process paths, and the
server's own statistics of a level (its load and the engine's executed batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENSEMBLE = "instruction_ner"
ENGINE = "engine"
ENSEMBLE_NO_SCORES = "instruction_ner_no_scores"

Summary = Mapping[str, Any]


def levels(summary: Summary, model: str) -> list[Mapping[str, Any]]:
    """Return the served levels of ``model``, by rising concurrency."""
    all_levels = summary["served"]["levels"]
    return sorted(
        (lv for lv in all_levels if lv["model"] == model), key=lambda lv: lv["concurrency"]
    )


def level(summary: Summary, model: str, concurrency: int) -> Mapping[str, Any] | None:
    """Return the served level of ``model`` at ``concurrency``, None if it was not measured."""
    for candidate in levels(summary, model):
        if candidate["concurrency"] == concurrency:
            return candidate
    return None


def measured_paths(summary: Summary) -> dict[str, Mapping[str, Any]]:
    """Return the in-process paths that ran and have a throughput, by name."""
    return {
        p["name"]: p for p in summary["paths"] if p.get("available", True) and "throughput" in p
    }


def level_stats(summary: Summary, model: str, concurrency: int) -> Mapping[str, Any]:
    """Return the server's statistics while ``model`` was measured at ``concurrency``."""
    for stats in summary["served"].get("level_stats", []):
        if stats["model"] == model and stats["concurrency"] == concurrency:
            return stats
    return {}


def level_load(summary: Summary, model: str, concurrency: int) -> Mapping[str, Any] | None:
    """Return the machine's load while ``model`` was measured at ``concurrency``."""
    return level_stats(summary, model, concurrency).get("load")


def engine_batch(summary: Summary, model: str, concurrency: int) -> float | None:
    """Return the engine model's average executed batch while ``model`` was measured."""
    engine = level_stats(summary, model, concurrency).get("models", {}).get(ENGINE, {})
    return engine.get("avg_batch")
