"""The machine and the load on it: CPU model, cores, versions, and other processes' CPU use.

The benchmark shares its cores with whatever else runs. :class:`CpuMonitor` measures, per
phase, how much CPU the rest of the machine took: all busy time from ``/proc/stat`` less the
time of this process and its descendants (the server, its stubs, perf_analyzer, the child
baselines). Every figure in the summary carries the share of the machine others used.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from instructner.deploy.build import usable_cores

_VERSIONED = (
    "torch",
    "transformers",
    "tokenizers",
    "ctranslate2",
    "nvidia-pytriton",
    "tritonclient",
    "numpy",
    "grpcio",
    "protobuf",
)


def _cpuinfo(proc: Path) -> tuple[str, set[str]]:
    model, flags = "unknown", set[str]()
    for line in (proc / "cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def machine_info(
    proc: Path = Path("/proc"), cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")
) -> dict[str, Any]:
    """Return CPU model, core counts, SIMD flags, memory, OS and package versions.

    ``usable_cpus`` is what the server sizes its threads by: the affinity, capped by a cgroup
    quota (a container started with ``--cpus``); ``affinity_cpus`` is the affinity alone.
    """
    model, flags = _cpuinfo(proc)
    memory_kib = 0
    for line in (proc / "meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    versions: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "hostname": platform.node(),
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable_cores(cpu_max),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "simd": sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_vnni", "avx_vnni"}),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "gpu": "none (CPU only)",
        "versions": versions,
    }


def perf_analyzer_version() -> str:
    """Return where perf_analyzer comes from (2.51 has no version flag; the wheel pins it)."""
    try:
        return f"perf_analyzer from tritonclient {importlib.metadata.version('tritonclient')}"
    except importlib.metadata.PackageNotFoundError:
        return "perf_analyzer (tritonclient version unknown)"


def _busy_ticks(proc: Path) -> tuple[int, int]:
    """Return (busy, total) jiffies over all CPUs from the first line of /proc/stat."""
    fields = [int(x) for x in (proc / "stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return total - idle, total


def _process_ticks(proc: Path) -> dict[int, tuple[int, int, int]]:
    """Return pid -> (parent, own ticks, waited-for children's ticks) for every process."""
    table = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
        table[int(entry.name)] = (
            int(fields[1]),
            int(fields[11]) + int(fields[12]),
            int(fields[13]) + int(fields[14]),
        )
    return table


def _descendants(table: dict[int, tuple[int, int, int]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass
class _Mark:
    wall: float
    busy: int
    total: int
    ours: dict[int, int]  # pid -> ticks counted for us (own; the root adds waited children)
    speed: float | None = None  # the speed probe just before the phase began


_PROBE = """
import sys, time

def best_rate(seconds, tries):
    best = 0.0
    for _ in range(tries):
        steps, begin = 0, time.perf_counter()
        while time.perf_counter() < begin + seconds:
            total = 0
            for value in range(10_000):
                total += value * value
            steps += 10_000
        best = max(best, steps / (time.perf_counter() - begin) / 1e6)
    return best

print(best_rate(float(sys.argv[1]), int(sys.argv[2])))
"""


def speed_probe(seconds: float = 0.05, tries: int = 3, settle_s: float = 0.2) -> float:
    """Return this core's speed now: millions of fixed interpreter steps per second.

    The quiet gate sees the other processes of this machine, not a host that slows the whole
    VM down; a fixed single-threaded loop timed before each phase shows such drift. The loop
    runs in a process of its own (in the bench's process it would share the GIL with the
    bench's own threads), after ``settle_s`` (OpenMP workers of the previous phase spin for a
    while after their last task), and the fastest of ``tries`` timings counts: a transient
    competitor slows one timing, a slower host all of them.
    """
    time.sleep(settle_s)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(seconds), str(tries)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(done.stdout.strip())


class CpuMonitor:
    """Measure the CPU share other processes took during named phases of this run.

    With ``probe`` (e.g. :func:`speed_probe`), every phase started with ``probe=True`` records
    the machine's speed just before it and just after it (``speed_probe`` and
    ``speed_probe_end`` in its record).
    """

    def __init__(
        self, proc: Path = Path("/proc"), probe: Callable[[], float] | None = None
    ) -> None:
        self.proc = proc
        self.root = os.getpid()
        self.probe = probe
        self.phases: dict[str, dict[str, float]] = {}
        self._open: dict[str, _Mark] = {}

    def _mark(self) -> _Mark:
        table = _process_ticks(self.proc)
        ours = {}
        for pid in _descendants(table, self.root):
            _, own, waited = table[pid]
            ours[pid] = own + (waited if pid == self.root else 0)
        busy, total = _busy_ticks(self.proc)
        return _Mark(time.monotonic(), busy, total, ours)

    def start(self, phase: str, probe: bool = True) -> None:
        """Begin measuring ``phase`` (after the speed probe, if there is one and ``probe``)."""
        # the probe runs before the mark, so its own CPU time is not counted in the phase
        speed = round(self.probe(), 2) if self.probe is not None and probe else None
        self._open[phase] = replace(self._mark(), speed=speed)

    def stop(self, phase: str) -> dict[str, float]:
        """End ``phase``; return and keep its wall time, our CPU share and the others' share."""
        begin, end = self._open.pop(phase), self._mark()
        total = max(1, end.total - begin.total)
        ours = sum(ticks - begin.ours.get(pid, 0) for pid, ticks in end.ours.items())
        busy = end.busy - begin.busy
        others = max(0, busy - ours)
        record = {
            "wall_s": round(end.wall - begin.wall, 3),
            "machine_busy": round(busy / total, 3),  # share of all CPUs, 0..1
            "ours": round(min(busy, ours) / total, 3),
            "others": round(others / total, 3),
            "loadavg_1min_end": float((self.proc / "loadavg").read_text().split()[0]),
        }
        if begin.speed is not None and self.probe is not None:  # a speed implies a probe
            record["speed_probe"] = begin.speed
            # after the end mark, so not counted in the phase: a host that changed speed
            # within the phase shows as a start and an end that differ
            record["speed_probe_end"] = round(self.probe(), 2)
        self.phases[phase] = record
        return record


@dataclass
class QuietGate:
    """Wait, within a time budget for the whole run, until other processes leave the CPUs.

    Before each measured path the gate samples the machine; while other processes take more
    than ``busy_share`` of it, it waits and samples again, until the budget is spent. Bursts of
    other work (a test run, an install) then pass; a steady load is measured and reported.
    """

    monitor: CpuMonitor
    budget_s: float
    busy_share: float = 0.2
    sample_s: float = 2.0
    waited_s: float = 0.0
    # With a probe, the gate also waits while the host runs slower than the fastest speed
    # it has seen (by more than ``slow_share``): some hosts alternate between two speeds
    # ~1.9x apart for minutes at a time, which no other process on this machine shows.
    speed_probe: Callable[[], float] | None = None
    slow_share: float = 0.2
    speed_budget_s: float = 0.0  # its own budget for the run, so the quiet gate keeps its
    speed_waited_s: float = 0.0
    fastest_speed: float = 0.0

    def wait(self, name: str) -> float:
        """Return the share of the machine others took in the last sample before ``name``."""
        while True:
            self.monitor.start(f"quiet_check_{name}", probe=False)
            time.sleep(self.sample_s)
            sample = self.monitor.stop(f"quiet_check_{name}")
            self.monitor.phases.pop(f"quiet_check_{name}")
            if sample["others"] > self.busy_share and self.waited_s < self.budget_s:
                self.waited_s += float(sample["wall_s"])
                continue
            if (
                self.speed_probe is None
                or self.speed_waited_s >= self.speed_budget_s
                or self._fast_enough()
            ):
                return float(sample["others"])
            self.speed_waited_s += float(sample["wall_s"])

    def _fast_enough(self) -> bool:
        """Probe the host; whether it runs within ``slow_share`` of its fastest speed seen."""
        assert self.speed_probe is not None
        speed = self.speed_probe()
        self.fastest_speed = max(self.fastest_speed, speed)
        return speed >= self.fastest_speed * (1.0 - self.slow_share)
