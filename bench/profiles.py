"""How much a run measures: the full benchmark and the smoke run share all code, not sizes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PerfSettings:
    """perf_analyzer's measurement window and stability rule (see the Triton CPU recipe)."""

    window_ms: int  # time_windows measurement interval
    stability_percent: int  # -s: windows within this % of each other count as stable
    max_trials: int  # -r: windows tried before the level is declared unstable
    retry_unstable: bool  # measure an unstable level once more with a doubled window


@dataclass(frozen=True)
class Profile:
    """One benchmark size."""

    name: str
    sentences: int  # first N CoNLL-2003 test sentences, used by every path
    concurrency: tuple[int, ...]
    transformers_batch_sizes: tuple[int, ...]  # swept to find transformers' best batch
    perf: PerfSettings
    quiet_wait_s: float = 60.0  # at most this long in all, wait for other processes to calm down
    quality_concurrency: int = 8  # parallel requests of the served quality (and warm-up) pass


FULL = Profile(
    name="full",
    sentences=256,
    concurrency=(1, 2, 4, 8, 16, 32),
    transformers_batch_sizes=(4, 8, 16, 32, 64),
    perf=PerfSettings(window_ms=5000, stability_percent=30, max_trials=20, retry_unstable=True),
    quiet_wait_s=300.0,
)

SMOKE = Profile(
    name="smoke",
    sentences=16,
    concurrency=(1, 8),
    transformers_batch_sizes=(16,),
    perf=PerfSettings(window_ms=2500, stability_percent=30, max_trials=8, retry_unstable=False),
    quiet_wait_s=20.0,
)

PROFILES = {p.name: p for p in (FULL, SMOKE)}
