"""Chaos run: ``python -m bench.chaos`` (``make chaos``; never in CI).

Starts the launcher exactly as ``make serve`` does (``python -m instructner.deploy.server``,
which supervises tritonserver) on free loopback ports, keeps it busy with client threads, and
``kill -9``s one model process of each kind in turn (every python-backend stub kind the
repository loads: instruction_ner and the engine model). For each kill it
records the answers that were wrong (compared with the same server's answers before any
kill), the calls that failed with their error class, how long after the kill the last call
failed, and when the launcher reported the server serving again. At the end the launcher is
stopped and the python backend's ``/dev/shm`` regions it ever used are checked to be gone.

The callers use the client's default retry policy, or ``--retry-attempts N`` attempts with
up to 1 s between them (what a caller that rides out a restart uses).

Writes ``<results>/<time>-chaos/chaos.json`` and ``summary.md``; exit code 0 when no answer was
wrong, every kill was followed by a restart and the regions are gone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from instructner.deploy.procfs import (
    descendants,
    mapped_shared_memory,
    python_stubs,
    runs_tritonserver,
)
from instructner.deploy.server import free_ports

REPO_ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"ready in [0-9.]+ s")
RECOVERED = re.compile(r"serves again ([0-9.]+) s after: (.*)")
LABELS = ("person", "location", "organization")
TEXTS = (
    "EU officials met in Brussels on Monday .",
    "Angela Merkel visited Paris on Tuesday.",
    "Sony hired Tim Cook in Tokyo.",
    "Nothing here mentions anyone.",
)


def say(message: str) -> None:
    """Progress on stderr."""
    sys.stderr.write(f"[chaos {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


class Launcher:
    """``python -m instructner.deploy.server`` as a child process, its log in a file."""

    def __init__(self, model: Path, out: Path, max_restarts: int = 5) -> None:
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        self.log_path = out / "launcher.log"
        self.command = [
            sys.executable,
            "-m",
            "instructner.deploy.server",
            "--model",
            str(model),
            "--out",
            str(out),
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            f"--max-restarts={max_restarts}",
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.regions: set[str] = set()

    @property
    def url(self) -> str:
        """The gRPC endpoint."""
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        """Return the launcher's log so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self, timeout_s: float = 600.0) -> None:
        """Start the launcher and wait until it logs that the server is ready."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
            )
        deadline = time.monotonic() + timeout_s
        while not READY.search(self.log()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the launcher did not become ready; log:\n{self.log()[-5000:]}")
            time.sleep(0.2)
        self.remember_regions()

    def server_pid(self) -> int | None:
        """Return the tritonserver process the launcher runs now."""
        assert self.process is not None
        return next((p for p in descendants(self.process.pid) if runs_tritonserver(p)), None)

    def remember_regions(self) -> None:
        """Note the shared-memory regions of the current server (checked after stop)."""
        pid = self.server_pid()
        if pid is not None:
            self.regions |= mapped_shared_memory(pid) | {s.region for s in python_stubs(pid)}

    def stubs(self) -> dict[str, list[int]]:
        """Stub kind (model name) -> process ids."""
        pid = self.server_pid()
        kinds: dict[str, list[int]] = {}
        for stub in python_stubs(pid) if pid else []:
            kinds.setdefault(stub.instance.rsplit("_", 2)[0], []).append(stub.pid)
        return kinds

    def recoveries(self) -> list[tuple[float, str]]:
        """(seconds, reason) of each restart the launcher reported."""
        return [(float(m.group(1)), m.group(2)) for m in RECOVERED.finditer(self.log())]

    def stop(self, timeout_s: float = 90.0) -> int | None:
        """SIGTERM the launcher (by PID) and wait; its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
        return process.wait()

    def regions_left(self) -> list[str]:
        """Return the remembered regions that still exist in /dev/shm."""
        return sorted(name for name in self.regions if Path("/dev/shm", name).exists())


@dataclass
class KillResult:
    """What one ``kill -9`` of a model process cost the callers."""

    kind: str
    pid: int
    calls_after_kill: int = 0
    wrong: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # error class -> count
    last_failure_s: float | None = None  # after the kill
    first_answer_s: float | None = None  # first call started after the kill that succeeded
    launcher_recovery_s: float | None = None  # "serves again ... s after" in its log
    all_answered_after_s: float | None = None  # every call started after this succeeded


class Load:
    """Client threads calling ``ner`` in a loop; answers and failures with their times."""

    def __init__(self, url: str, threads: int, retry_attempts: int | None) -> None:
        from instructner_client import InstructNERClient, RetryPolicy

        self.url = url
        self.retry = (
            RetryPolicy(max_attempts=retry_attempts, max_backoff=1.0)
            if retry_attempts
            else RetryPolicy()
        )
        with InstructNERClient(url) as client:
            self.expected = {t: client.ner(t, labels=list(LABELS)) for t in TEXTS}
        self.records: list[tuple[float, float, str]] = []  # (started, ended, outcome)
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._work, args=(i,)) for i in range(threads)]

    def _work(self, index: int) -> None:
        from instructner_client import InstructNERClient, InstructNERError

        with InstructNERClient(self.url, retry=self.retry, timeout=30.0) as client:
            n = index
            while not self.stop_event.is_set():
                text = TEXTS[n % len(TEXTS)]
                n += 1
                started = time.monotonic()
                try:
                    answer = client.ner(text, labels=list(LABELS))
                    outcome = "ok" if answer == self.expected[text] else "wrong"
                except InstructNERError as error:
                    outcome = type(error).__name__
                    time.sleep(0.05)  # a failing server is not hammered in a tight loop
                with self.lock:
                    self.records.append((started, time.monotonic(), outcome))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(120)

    def since(self, moment: float) -> list[tuple[float, float, str]]:
        """Return the calls that ended after ``moment``."""
        with self.lock:
            return [r for r in self.records if r[1] >= moment]


def kill_under_load(
    launcher: Launcher, load: Load, kind: str, settle_s: float = 20.0
) -> KillResult:
    """``kill -9`` one ``kind`` stub while ``load`` runs; measure the ``settle_s`` after."""
    pids = launcher.stubs().get(kind)
    if not pids:
        raise RuntimeError(f"no {kind} process to kill")
    before = len(launcher.recoveries())
    killed_at = time.monotonic()
    os.kill(pids[0], signal.SIGKILL)
    time.sleep(settle_s)
    result = KillResult(kind, pids[0])
    calls = load.since(killed_at)
    result.calls_after_kill = len(calls)
    result.wrong = sum(1 for _, _, outcome in calls if outcome == "wrong")
    failures = [(end, outcome) for _, end, outcome in calls if outcome not in ("ok", "wrong")]
    result.failed = dict(Counter(outcome for _, outcome in failures))
    if failures:
        result.last_failure_s = round(max(end for end, _ in failures) - killed_at, 2)
    answered = [start for start, _, outcome in calls if outcome == "ok" and start >= killed_at]
    if answered:
        result.first_answer_s = round(min(answered) - killed_at, 2)
    failed_starts = [s for s, _, o in calls if o not in ("ok", "wrong")]
    result.all_answered_after_s = round(max(failed_starts) - killed_at, 2) if failed_starts else 0
    recoveries = launcher.recoveries()[before:]
    if recoveries:
        result.launcher_recovery_s = recoveries[0][0]
    launcher.remember_regions()
    return result


def summary_markdown(record: dict[str, Any]) -> str:
    """Return the run as a markdown table."""
    lines = [
        f"Chaos run {record['started']} on {record['machine']}: {record['threads']} callers, "
        f"retry attempts {record['retry_attempts'] or 'default (3)'}.",
        "",
        "| killed | calls after | wrong | failed (class: count) | last failure (s) | "
        "launcher: serving again (s) |",
        "|---|---|---|---|---|---|",
    ]
    for kill in record["kills"]:
        failed = ", ".join(f"{k}: {v}" for k, v in kill["failed"].items()) or "0"
        lines.append(
            f"| {kill['kind']} | {kill['calls_after_kill']} | {kill['wrong']} | {failed} | "
            f"{kill['last_failure_s'] if kill['last_failure_s'] is not None else '-'} | "
            f"{kill['launcher_recovery_s']} |"
        )
    lines += [
        "",
        f"Launcher exit code after SIGTERM: {record['exit_code']} "
        f"({record['stop_s']} s); shared-memory regions left: {len(record['regions_left'])}.",
    ]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Kill each stub kind under load; write the results; the exit code."""
    from bench.machine import machine_info

    started = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.results / f"{started}-chaos"
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    launcher = Launcher(args.model, work / "out")
    say(f"starting the launcher ({args.model}) in {work}")
    launcher.start()
    kills: list[KillResult] = []
    try:
        kinds = args.kinds or sorted(launcher.stubs())
        with Load(launcher.url, args.threads, args.retry_attempts) as load:
            time.sleep(3)
            for kind in kinds:
                say(f"kill -9 one {kind} process")
                kills.append(kill_under_load(launcher, load, kind, args.settle))
                say(f"  {asdict(kills[-1])}")
    finally:
        stop_started = time.monotonic()
        code = launcher.stop()
        stop_s = round(time.monotonic() - stop_started, 1)
    record = {
        "started": started,
        "machine": machine_info().get("cpu_model", "?"),
        "model": str(args.model),
        "threads": args.threads,
        "retry_attempts": args.retry_attempts,
        "settle_s": args.settle,
        "kills": [asdict(k) for k in kills],
        "exit_code": code,
        "stop_s": stop_s,
        "regions_left": launcher.regions_left(),
    }
    (out / "chaos.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(record), encoding="utf-8")
    say(f"wrote {out}")
    sys.stdout.write(summary_markdown(record))
    bad = (
        any(k.wrong or k.launcher_recovery_s is None for k in kills)
        or record["regions_left"]
        or code != 0
    )
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "default")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds measured per kill")
    parser.add_argument(
        "--retry-attempts", type=int, default=None, help="client attempts (default: policy's)"
    )
    parser.add_argument("--kinds", nargs="*", help="stub kinds to kill (default: every kind)")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "bench" / "results")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
