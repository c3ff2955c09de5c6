"""Keep a served tritonserver whole: notice a dead model process and restart the server.

Triton's python backend runs every model instance in its own stub process. When one dies
(``kill -9``, the kernel's OOM killer, a crash in native code) Triton neither restarts it nor
reports it: the requests routed to that instance fail with INTERNAL "Stub process ... is not
healthy" for ever, health endpoints stay 200, and shutdown hangs for the exit timeout. The
launcher therefore watches the server and each stub by PID (from ``/proc``, every
``poll_s``) and, when one is gone, stops the server at once (SIGTERM, then SIGKILL after a
short grace), removes the shared-memory regions the dead processes left in ``/dev/shm`` and
starts it again on the same ports. While it restarts, the ports are closed, so readiness
fails and clients see UNAVAILABLE (which :mod:`instructner_client` retries). A
:class:`RestartPolicy` bounds the restarts; past it the launcher exits non-zero so that the
container runtime or Kubernetes restarts it loudly instead of a silent partial outage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from instructner.deploy.procfs import (
    STUB_BINARY,
    StubProcess,
    descendants,
    mapped_shared_memory,
    process_alive,
    python_stubs,
    start_time,
)
from instructner.deploy.server import ServerError, TritonServer

__all__ = [
    "STUB_BINARY",
    "RestartPolicy",
    "StubProcess",
    "Supervisor",
    "declared_instances",
    "mapped_shared_memory",
    "process_alive",
    "python_stubs",
    "remove_regions",
    "start_time",
    "watch_command",
]

logger = logging.getLogger(__name__)

_COUNT = re.compile(r"instance_group\s*\[\s*\{[^}]*?count\s*:\s*(\d+)", re.S)
_PYTHON_BACKEND = re.compile(r'backend\s*:\s*"python"')


def declared_instances(repository: Path) -> dict[str, int]:
    """Return python model name -> instance count, from the repository's ``config.pbtxt``."""
    counts = {}
    for config in sorted(repository.glob("*/config.pbtxt")):
        text = config.read_text(encoding="utf-8")
        if not _PYTHON_BACKEND.search(text):
            continue
        match = _COUNT.search(text)
        counts[config.parent.name] = int(match.group(1)) if match else 1
    return counts


def remove_regions(names: Sequence[str] | set[str], shm: Path = Path("/dev/shm")) -> list[Path]:
    """Delete the named regions (files directly in ``shm``) that still exist; return those.

    The names come from the stubs' command lines and the server's memory maps, never from a
    caller.
    """
    removed = []
    for name in sorted(names):
        if not name or "/" in name or name in (".", ".."):
            continue  # a file name in /dev/shm, never a path
        with contextlib.suppress(FileNotFoundError):
            (shm / name).unlink()
            removed.append(shm / name)
    return removed


@dataclass(frozen=True)
class RestartPolicy:
    """At most ``max_restarts`` restarts within ``window_s`` seconds; 0 never restarts."""

    max_restarts: int = 5
    window_s: float = 600.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.window_s <= 0:
            raise ValueError("max_restarts must be >= 0 and window_s > 0")


class Supervisor:
    """Start a :class:`TritonServer`, watch its processes, restart it when one dies.

    Call :meth:`start`, then :meth:`check` every ``poll_s`` (or :meth:`run`), and
    :meth:`stop` at the end; :attr:`restarts` records (reason, seconds to ready again).
    """

    def __init__(
        self,
        server: TritonServer,
        models: Sequence[str] = ("instruction_ner",),
        policy: RestartPolicy | None = None,
        ready_timeout_s: float = 300.0,
        grace_s: float = 5.0,  # for stubs to quit after their server stopped
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.server = server
        self.models = tuple(models)
        self.policy = policy or RestartPolicy()
        self.ready_timeout_s = ready_timeout_s
        self.grace_s = grace_s
        self.clock = clock
        self.stubs: list[StubProcess] = []
        self.regions: set[str] = set()
        self.expected = 0  # python-backend instances the repository declares
        self.restarts: list[tuple[str, float]] = []
        self._recent: deque[float] = deque()
        self.should_stop: Callable[[], bool] = lambda: False  # checked while starting

    def start(self) -> float:
        """Start the server and wait until ``models`` are ready; return the seconds it took.

        Raises:
            ServerError: it did not become ready, or :attr:`should_stop` said stop meanwhile.

        """
        self.server.start()
        took = self.server.wait_ready(self.ready_timeout_s, self.models, self.should_stop)
        self._snapshot()
        return took

    def _snapshot(self) -> None:
        pid = self.server.pid
        assert pid is not None
        self.stubs = python_stubs(pid)
        self.regions = mapped_shared_memory(pid) | {s.region for s in self.stubs}
        self.expected = sum(declared_instances(self.server.config.repository).values())
        logger.info("watching tritonserver %d and %d model processes", pid, len(self.stubs))

    def failure(self) -> str | None:
        """Return why the server is broken (a process died), or None while it is whole."""
        process = self.server.process
        if process is None:
            return "tritonserver is not running"
        code = process.poll()
        if code is not None:
            return f"tritonserver exited with code {code}"
        dead = [s for s in self.stubs if not process_alive(s.pid, started=s.started)]
        if dead:
            names = ", ".join(f"{s.instance} (pid {s.pid})" for s in dead)
            return f"model process {names} died"
        if len(self.stubs) < self.expected:
            return (
                f"{len(self.stubs)} model processes run, the repository declares "
                f"{self.expected}: one died while the server started"
            )
        return None

    def check(self) -> str | None:
        """Restart the server if it is broken; return the reason, or None if it was whole.

        Raises:
            ServerError: the restart policy is exhausted, or the server did not come back.

        """
        reason = self.failure()
        if reason is None:
            return None
        logger.error("%s: restarting tritonserver", reason)
        now = self.clock()
        while self._recent and now - self._recent[0] > self.policy.window_s:
            self._recent.popleft()
        if len(self._recent) >= self.policy.max_restarts:
            raise ServerError(
                f"{reason}; not restarting: {len(self._recent)} restarts in the last "
                f"{self.policy.window_s:.0f} s (the restart limit); log:\n" + self.server.log_tail()
            )
        self._recent.append(now)
        started = self.clock()
        self._halt(graceful=False)
        self.start()
        took = self.clock() - started
        self.restarts.append((reason, took))
        logger.warning("tritonserver serves again %.1f s after: %s", took, reason)
        return reason

    def run(self, should_stop: Callable[[], bool], poll_s: float = 0.5) -> None:
        """Check every ``poll_s`` until ``should_stop()``; raises as :meth:`check` does."""
        self.should_stop = should_stop
        while not should_stop():
            self.check()
            time.sleep(poll_s)

    def _halt(self, graceful: bool) -> None:
        """Stop the server, then its stubs, and remove the shared memory they leave.

        ``graceful``: SIGTERM, which lets requests in flight finish but unloads the models
        first (new requests get NOT_FOUND, which clients do not retry) and waits up to the exit
        timeout for a dead stub; otherwise SIGKILL at once: requests in flight fail with
        UNAVAILABLE, which clients retry against the restarted server.
        """
        process = self.server.process
        if graceful or process is None:
            self.server.stop(timeout_s=self.grace_s)
        else:
            process.kill()
            process.wait()
            self.server.process = None
        stubs = [s.pid for s in self.stubs]
        started = {s.pid: s.started for s in self.stubs}
        deadline = self.clock() + (self.grace_s if graceful else 0.0)
        while stubs and self.clock() < deadline:  # they notice their server is gone and quit
            stubs = [pid for pid in stubs if process_alive(pid, started=started.get(pid, 0))]
            time.sleep(0.05)
        for pid in stubs:  # the rest, our own server's processes, by PID
            if process_alive(pid, started=started.get(pid, 0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        removed = remove_regions(self.regions)
        if removed:
            logger.info("removed %d shared-memory regions left in /dev/shm", len(removed))
        self.stubs, self.regions = [], set()

    def stop(self) -> None:
        """Stop the server: gracefully (up to 45 s) while whole, at once when a process died."""
        if self.failure() is None:
            grace, self.grace_s = self.grace_s, 45.0
            try:
                self._halt(graceful=True)
            finally:
                self.grace_s = grace
        else:
            self._halt(graceful=False)


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and every process below it (by PID, children first); return them."""
    pids = [*reversed(descendants(pid)), pid]
    for each in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGKILL)
    return pids


def watch_command(command: Sequence[str], poll_s: float = 0.5) -> int:
    """Run ``command`` (a tritonserver, possibly under mpirun) until it exits or a stub dies.

    For containers whose entry point starts tritonserver itself: a python-backend process
    that dies while the server runs makes this kill the whole tree, remove its shared-memory
    regions and exit 1, so that the container runtime (compose ``restart``, Kubernetes)
    restarts it. SIGTERM and SIGINT are passed on to the command. Returns the exit code.
    """
    process = subprocess.Popen(list(command))
    stopping = {"signal": 0}

    def forward(signum: int, _frame: object) -> None:
        stopping["signal"] = signum
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)

    previous = {n: signal.signal(n, forward) for n in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _watch(process, stopping, poll_s)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _watch(process: subprocess.Popen[bytes], stopping: dict[str, int], poll_s: float) -> int:
    seen: dict[int, StubProcess] = {}
    while process.poll() is None:
        for stub in python_stubs(process.pid):
            seen.setdefault(stub.pid, stub)
        dead = [s for s in seen.values() if not process_alive(s.pid, started=s.started)]
        if dead and not stopping["signal"]:
            names = ", ".join(f"{s.instance} (pid {s.pid})" for s in dead)
            logger.error("model process %s died: stopping the server (exit 1)", names)
            kill_tree(process.pid)
            process.wait()
            removed = remove_regions({s.region for s in seen.values()})
            logger.info("removed %d shared-memory regions", len(removed))
            return 1
        time.sleep(poll_s)
    code = process.returncode
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m instructner.deploy.supervise -- tritonserver ...``: see :func:`watch_command`."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Run a tritonserver command; exit 1 (after killing it) when one of its "
        "python-backend model processes dies, so that the container is restarted."
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- tritonserver ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the server command after --")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return watch_command(command)


if __name__ == "__main__":
    sys.exit(main())
