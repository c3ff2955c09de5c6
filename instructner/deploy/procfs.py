"""What the deployment tools read from ``/proc``: process trees, python-backend stubs, regions.

Shared by the launcher (``server``: private shared memory), its supervision (``supervise``),
the container probe and the benchmarks. Linux only; every reader tolerates processes that
exit while it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PYTHON_BACKEND_SHM_PREFIX = "triton_python_backend_shm_region"
STUB_BINARY = "triton_python_backend_stub"


def stat_fields(pid: int, proc: Path = Path("/proc")) -> list[str]:
    """Return ``/proc/<pid>/stat`` after the command name (field 3 first); [] when gone."""
    try:
        return (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def runs_tritonserver(pid: int, proc: Path = Path("/proc")) -> bool:
    """Return whether ``pid`` is a tritonserver process (its program's name)."""
    try:
        return (proc / str(pid) / "cmdline").read_bytes().split(b"\0")[0].endswith(b"tritonserver")
    except OSError:
        return False


def descendants(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """Return the process ids below ``pid`` (children, grandchildren, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        fields = stat_fields(int(entry.name), proc)
        if len(fields) > 1:  # else gone meanwhile
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


@dataclass(frozen=True)
class StubProcess:
    """One python-backend stub: a model instance in its own process."""

    pid: int
    instance: str  # e.g. engine_0_1
    region: str  # its /dev/shm region's name
    started: int = 0  # start time in clock ticks since boot (/proc/<pid>/stat field 22)


def python_stubs(server_pid: int, proc: Path = Path("/proc")) -> list[StubProcess]:
    """Return the python-backend stubs below ``server_pid``, from their command lines.

    A stub's command line is ``<stub> <model.py> <shm region> <sizes...> <parent pid>
    <backend dir> <ipc handle> <instance name> <kind>`` (python_backend r24.x).
    """
    stubs = []
    for pid in descendants(server_pid, proc):
        try:
            args = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode("utf-8", "replace") for a in args]
        if len(words) < 9 or not words[0].endswith(STUB_BINARY):
            continue
        region = words[2].lstrip("/")  # the prefix is configurable (shm-region-prefix-name)
        if region and "/" not in region:
            stubs.append(StubProcess(pid, words[8], region, start_time(pid, proc)))
    return stubs


def start_time(pid: int, proc: Path = Path("/proc")) -> int:
    """Return when ``pid`` started (clock ticks since boot), 0 when it is gone.

    With the pid it names one process for good: a pid the kernel hands out again belongs to a
    process that started later.
    """
    fields = stat_fields(pid, proc)
    try:
        return int(fields[19])  # field 22 of stat; fields[0] is field 3 (the state)
    except (IndexError, ValueError):
        return 0


def process_alive(pid: int, proc: Path = Path("/proc"), started: int = 0) -> bool:
    """Return whether ``pid`` runs (a zombie, dead and waiting to be reaped, does not).

    With ``started`` (see :func:`start_time`), a process that reuses the pid does not count.
    """
    fields = stat_fields(pid, proc)
    if not fields or fields[0] in ("Z", "X", "x"):
        return False
    return not started or (len(fields) > 19 and fields[19] == str(started))


def mapped_shared_memory(pid: int, proc: Path = Path("/proc")) -> set[str]:
    """Return the names of the python backend's /dev/shm regions that ``pid`` has mapped."""
    try:
        maps = (proc / str(pid) / "maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    names = set()
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)  # address perms offset device inode path
        path = fields[5].removesuffix(" (deleted)") if len(fields) == 6 else ""
        name = path.removeprefix("/dev/shm/")
        if path.startswith("/dev/shm/") and name.startswith(PYTHON_BACKEND_SHM_PREFIX):
            if "/" not in name:
                names.add(name)
    return names
