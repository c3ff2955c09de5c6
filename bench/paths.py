"""What one measured path produced: throughput, latencies, generated tokens and quality."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from bench.quality import Quality

# Names of the in-process paths of our engine (bench/baselines.py): the batch-1 loop, one
# batch at the server's thread layout, and one batch at the best layout of the thread sweep
# (run only when that is not the server's); the faster batch is the reference of the served
# path.
INPROCESS_BATCH1 = "engine_inprocess_batch1"
INPROCESS_BATCHMAX = "engine_inprocess_batchmax"
INPROCESS_BATCHMAX_BEST_LAYOUT = "engine_inprocess_batchmax_best_layout"
INPROCESS_BATCHMAX_PATHS = (INPROCESS_BATCHMAX, INPROCESS_BATCHMAX_BEST_LAYOUT)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) by the nearest-rank method (as perf_analyzer).

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside 0..100.

    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class PathResult:
    """One in-process path over the workload (a baseline or the engine without Triton)."""

    name: str  # stable key, e.g. transformers_batch1
    title: str  # for tables and plots
    batch_size: int
    sentences: int
    seconds: float
    output_tokens: list[int] = field(repr=False)  # generated tokens per sentence
    quality: Quality | None = None
    latencies_s: list[float] = field(default_factory=list, repr=False)  # per call
    notes: str = ""
    load: dict[str, float] = field(default_factory=dict)  # CPU shares while it ran
    windows: list[int] = field(default_factory=list, repr=False)  # engine calls per sentence
    # (prompt tokens, generated tokens, ended: bench.flops.call_ended) per engine call
    engine_calls: list[tuple[int, int, bool]] = field(default_factory=list, repr=False)
    layout: str = ""  # our engine in-process: its thread layout, in words

    @property
    def throughput(self) -> float:
        """Sentences per second."""
        return self.sentences / self.seconds

    def to_dict(self) -> dict[str, object]:
        """Return the figures as a JSON-ready dict (latency percentiles in milliseconds)."""
        record: dict[str, object] = {
            "name": self.name,
            "title": self.title,
            "batch_size": self.batch_size,
            "sentences": self.sentences,
            "seconds": self.seconds,
            "throughput": self.throughput,
            "mean_output_tokens": sum(self.output_tokens) / len(self.output_tokens),
            "min_output_tokens": min(self.output_tokens),
            "max_output_tokens": max(self.output_tokens),
            "quality": self.quality.to_dict() if self.quality else None,
            "notes": self.notes,
            "load": self.load,
            "multi_window_sentences": sum(1 for w in self.windows if w > 1),
        }
        if self.layout:
            record["layout"] = self.layout
        if self.engine_calls:
            record["prompt_tokens_per_window"] = sum(n for n, _, _ in self.engine_calls) / len(
                self.engine_calls
            )
        if self.latencies_s:
            for q in (50, 90, 99):
                record[f"p{q}_ms"] = percentile(self.latencies_s, q) * 1000
        return record


@dataclass
class Unavailable:
    """A path that could not run, and why (reported, never left out silently)."""

    name: str
    title: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        """Return the reason as a JSON-ready dict."""
        return {**asdict(self), "available": False}
