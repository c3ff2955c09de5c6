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
    # at most this long in all, wait for a host running slower than its fastest speed seen
    # (bench/machine.py QuietGate) to return to it
    speed_wait_s: float = 60.0
    quality_concurrency: int = 8  # parallel requests of the served quality (and warm-up) pass
    # Rounds of the concurrency-1 pair (engine alone, then instruction_ner): a p99 of one
    # run of a few seconds is a noisy draw, so the p99 ratio's target is checked on the median
    # over the rounds (the first round is the concurrency-1 level of the served table).
    c1_rounds: int = 3
    # Scaling (bench/scaling.py): documents of k sentences and longer option lists, served
    # instruction_ner at one concurrency, cut from the first scaling_sentences test sentences
    scaling_concurrency: int = 8
    scaling_sentences: int = 800
    doc_lengths: tuple[int, ...] = (1, 5, 20, 100)  # sentences per request
    label_counts: tuple[int, ...] = (4, 12, 83)  # options per prompt
    scaling_window_requests: int = 32  # a measurement window should hold this many requests
    scaling_window_cap_ms: int = 20_000
    # The limit (bench/limit.py): GEMM peak and the engine's thread layouts
    gemm_size: int = 2048  # square matrices
    gemm_seconds: float = 3.0  # time each GEMM kind is repeated for (the best run counts)
    sweep_sentences: int = 256  # engine thread-layout sweep: the first N sentences' windows
    sweep_batch_sizes: tuple[int, ...] = (1, 8, 64)
    sweep_repeats: int = 3  # timed passes per layout and batch (the median counts)


FULL = Profile(
    name="full",
    sentences=256,
    concurrency=(1, 2, 4, 8, 16, 32),
    transformers_batch_sizes=(4, 8, 16, 32, 64),
    perf=PerfSettings(window_ms=5000, stability_percent=30, max_trials=20, retry_unstable=True),
    quiet_wait_s=300.0,
    speed_wait_s=600.0,
)

SMOKE = Profile(
    name="smoke",
    sentences=16,
    concurrency=(1, 8),
    transformers_batch_sizes=(16,),
    perf=PerfSettings(window_ms=2500, stability_percent=30, max_trials=8, retry_unstable=False),
    quiet_wait_s=20.0,
    c1_rounds=1,
    scaling_sentences=80,
    doc_lengths=(1, 20),
    label_counts=(4, 83),
    scaling_window_requests=16,
    scaling_window_cap_ms=6000,
    gemm_seconds=1.0,
    sweep_sentences=64,
    sweep_batch_sizes=(64,),
    sweep_repeats=2,
)

PROFILES = {p.name: p for p in (FULL, SMOKE)}
