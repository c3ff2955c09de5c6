"""What the server says about itself: per-model statistics deltas and resident memory.

Triton's statistics are cumulative; a level's figures are the difference of two snapshots.
The average batch the engine model executed (inferences / executions) shows how much dynamic
batching happened. Resident memory is summed over tritonserver and its python-backend stubs
(its child processes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from instructner.deploy.procfs import descendants

_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024  # /proc/<pid>/statm counts pages

Snapshot = dict[str, dict[str, int]]


@dataclass(frozen=True)
class ModelDelta:
    """One model's work between two snapshots."""

    requests: int
    executions: int
    inferences: int
    avg_batch: float | None  # inferences per execution
    avg_queue_us: float | None
    avg_compute_infer_us: float | None

    def to_dict(self) -> dict[str, object]:
        """Return the delta as a JSON-ready dict."""
        return asdict(self)


def snapshot_from_json(statistics: Mapping[str, Any]) -> Snapshot:
    """Return model name -> counters from ``get_inference_statistics(as_json=True)``.

    The JSON (protobuf's mapping) writes 64-bit integers as strings and leaves zeros out.
    """
    snapshot: Snapshot = {}
    for model in statistics.get("model_stats", []):
        stats = model.get("inference_stats", {})

        def counter(section: str, key: str, stats: Mapping[str, Any] = stats) -> int:
            return int(stats.get(section, {}).get(key, 0))

        snapshot[str(model["name"])] = {
            "requests": counter("success", "count"),
            "queue_ns": counter("queue", "ns"),
            "compute_infer_ns": counter("compute_infer", "ns"),
            "inferences": int(model.get("inference_count", 0)),
            "executions": int(model.get("execution_count", 0)),
        }
    return snapshot


def snapshot_delta(before: Snapshot, after: Snapshot) -> dict[str, ModelDelta]:
    """Return each model's :class:`ModelDelta` between two snapshots (models in ``after``)."""
    deltas = {}
    for name, end in after.items():
        start = before.get(name, {})
        diff = {key: value - start.get(key, 0) for key, value in end.items()}
        requests, executions = diff["requests"], diff["executions"]
        deltas[name] = ModelDelta(
            requests=requests,
            executions=executions,
            inferences=diff["inferences"],
            avg_batch=diff["inferences"] / executions if executions else None,
            avg_queue_us=diff["queue_ns"] / requests / 1000 if requests else None,
            avg_compute_infer_us=diff["compute_infer_ns"] / requests / 1000 if requests else None,
        )
    return deltas


def process_tree_rss(pid: int, proc: Path = Path("/proc")) -> dict[str, Any]:
    """Return the resident memory (KiB) of ``pid`` and all its descendants, and per process."""
    processes = []
    for current in [pid, *descendants(pid, proc)]:
        try:
            pages = int((proc / str(current) / "statm").read_text().split()[1])
            name = (proc / str(current) / "comm").read_text().strip()
        except OSError:
            continue
        processes.append({"pid": current, "name": name, "rss_kib": pages * _PAGE_KIB})
    return {
        "total_kib": sum(p["rss_kib"] for p in processes),
        "processes": sorted(processes, key=lambda p: p["pid"]),
    }
