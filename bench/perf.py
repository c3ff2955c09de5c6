"""Run perf_analyzer (from the ``tritonclient==2.51.0`` wheel) one concurrency level at a time.

perf_analyzer needs ``libb64.so.0d`` and ``libcudart.so.12`` and has no RPATH; the
``nvidia-pytriton`` wheel bundles both under hashed names, and the loader matches file names,
so symlinks in a private folder on ``LD_LIBRARY_PATH`` are enough (recipe, option b). Each
level runs on its own so that a level that cannot be stabilised loses only itself, and so the
server's statistics can be read per level. Exit code 2 means "no stable measurement" (and no
CSV); any error response aborts perf_analyzer with 99, which is a failure of the server.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.profiles import PerfSettings

UNSTABLE_EXIT = 2
# The bundled copies and the names perf_analyzer asks the loader for.
_LIBRARIES = {
    "libb64-98cb6333.so.0d": "libb64.so.0d",
    "libcudart-09529672.so.12.6.77": "libcudart.so.12",
}
# CSV header (-f) of perf_analyzer 2.51 -> field of PerfLevel; times in microseconds.
CSV_COLUMNS = {
    "Concurrency": "concurrency",
    "Inferences/Second": "throughput",
    "Client Send": "client_send_us",
    "Network+Server Send/Recv": "network_us",
    "Server Queue": "server_queue_us",
    "Server Compute Input": "server_compute_input_us",
    "Server Compute Infer": "server_compute_infer_us",
    "Server Compute Output": "server_compute_output_us",
    "Client Recv": "client_recv_us",
    "p50 latency": "p50_us",
    "p90 latency": "p90_us",
    "p95 latency": "p95_us",
    "p99 latency": "p99_us",
}
_PASS = re.compile(
    r"Pass \[(\d+)\] throughput: ([0-9.]+) infer/sec\. Avg latency: (\d+) usec", re.MULTILINE
)


class PerfError(RuntimeError):
    """perf_analyzer failed for a reason other than an unstable measurement."""


@dataclass(frozen=True)
class PerfLevel:
    """One model at one concurrency: throughput (requests = sentences per second) and times.

    An unstable level (no stable window found) keeps the mean throughput and average latency
    of its last windows and has no percentiles.
    """

    model: str
    concurrency: int
    throughput: float
    stable: bool = True
    p50_us: float | None = None
    p90_us: float | None = None
    p95_us: float | None = None
    p99_us: float | None = None
    avg_latency_us: float | None = None
    client_send_us: float | None = None
    network_us: float | None = None
    server_queue_us: float | None = None
    server_compute_input_us: float | None = None
    server_compute_infer_us: float | None = None
    server_compute_output_us: float | None = None
    client_recv_us: float | None = None
    csv_file: str | None = None
    window_ms: int | None = None

    def to_dict(self) -> dict[str, object]:
        """Return the level as a JSON-ready dict."""
        return asdict(self)


def parse_perf_csv(text: str, model: str) -> list[PerfLevel]:
    """Parse perf_analyzer's ``-f`` CSV into one :class:`PerfLevel` per row.

    Raises:
        PerfError: the header lacks a column or a cell is not a number (both named).

    """
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [name for name in CSV_COLUMNS if name not in header]
    if missing:
        raise PerfError(f"perf_analyzer CSV lacks column(s) {', '.join(missing)}; got {header}")
    levels = []
    for line, row in enumerate(reader, start=2):
        values: dict[str, Any] = {}
        for column, name in CSV_COLUMNS.items():
            try:
                values[name] = float(row[column])
            except (TypeError, ValueError):
                raise PerfError(
                    f"perf_analyzer CSV line {line}: {column} is {row[column]!r}, not a number"
                ) from None
        concurrency = int(values.pop("concurrency"))
        levels.append(PerfLevel(model=model, concurrency=concurrency, **values))
    if not levels:
        raise PerfError("perf_analyzer CSV has a header but no measurement row")
    return levels


def parse_unstable_passes(stdout: str, model: str, concurrency: int, last: int = 3) -> PerfLevel:
    """Return the mean of the last ``last`` windows perf_analyzer printed before giving up.

    Raises:
        PerfError: the output holds no window line.

    """
    passes = [(float(t), float(lat)) for _, t, lat in _PASS.findall(stdout)]
    if not passes:
        raise PerfError(f"perf_analyzer printed no measurement window for {model} c={concurrency}")
    tail = passes[-last:]
    return PerfLevel(
        model=model,
        concurrency=concurrency,
        throughput=sum(t for t, _ in tail) / len(tail),
        avg_latency_us=sum(lat for _, lat in tail) / len(tail),
        stable=False,
    )


def find_perf_analyzer() -> Path:
    """Return the perf_analyzer binary of this virtualenv (``tritonclient==2.51.0``).

    Raises:
        FileNotFoundError: it is not installed.

    """
    candidates = [
        Path(sys.prefix) / "bin" / "perf_analyzer",
        Path(sysconfig.get_paths()["scripts"]) / "perf_analyzer",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        "perf_analyzer is missing: it ships in the tritonclient==2.51.0 wheel "
        "(`make setup` installs it into .venv/bin)"
    )


def library_dir(directory: Path) -> Path:
    """Make ``directory`` hold the two libraries perf_analyzer loads, as symlinks.

    Raises:
        FileNotFoundError: the ``nvidia-pytriton`` wheel's copies are missing.

    """
    bundled = Path(sysconfig.get_paths()["purelib"]) / "nvidia_pytriton.libs"
    directory.mkdir(parents=True, exist_ok=True)
    for source, name in _LIBRARIES.items():
        target = bundled / source
        if not target.is_file():
            raise FileNotFoundError(
                f"{target} is missing: perf_analyzer borrows it from nvidia-pytriton==0.7.0"
            )
        link = directory / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return directory


def perf_command(
    binary: Path,
    model: str,
    url: str,
    input_data: Path,
    concurrency: int,
    settings: PerfSettings,
    csv_file: Path,
    headers: Mapping[str, str] | None = None,
    request_parameters: Mapping[str, str] | None = None,
) -> list[str]:
    """Return the perf_analyzer command for one model at one concurrency (gRPC, batch 1).

    ``headers`` go with every call (the admin key for the server-side statistics);
    ``request_parameters`` with every inference (the internal key of a pipeline step).
    """
    extra = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}:{value}")]
    for name, value in (request_parameters or {}).items():
        extra += ["--request-parameter", f"{name}:{value}:string"]
    return [
        str(binary),
        "-m",
        model,
        "-u",
        url,
        "-i",
        "grpc",
        "--input-data",
        str(input_data),
        "-b",
        "1",
        "--concurrency-range",
        f"{concurrency}:{concurrency}:1",
        "--measurement-mode",
        "time_windows",
        "--measurement-interval",
        str(settings.window_ms),
        "-s",
        str(settings.stability_percent),
        "-r",
        str(settings.max_trials),
        "-f",
        str(csv_file),
        "-v",  # prints every window, so an unstable level still yields its throughput
        *extra,
    ]


def retry_window_ms(settings: PerfSettings, cap_ms: int | None = None) -> int | None:
    """Return the window an unstable level is measured again with, or None for no retry.

    Twice the window, at most ``cap_ms``; no retry when ``settings`` forbid it or the window
    cannot grow (it is at the cap already).
    """
    if not settings.retry_unstable:
        return None
    doubled = settings.window_ms * 2
    if cap_ms is None:
        return doubled
    capped = min(doubled, cap_ms)
    return capped if capped > settings.window_ms else None


def run_timeout_s(settings: PerfSettings, margin_s: float) -> float:
    """Return how long one perf_analyzer run of ``settings`` may take before it is stopped.

    Every window it may try (``max_trials`` × ``window_ms``), plus ``margin_s`` for its start
    and the requests still in flight when the last window closes.
    """
    return settings.max_trials * settings.window_ms / 1000 + margin_s


@dataclass(frozen=True)
class PerfAnalyzer:
    """perf_analyzer pointed at one server."""

    binary: Path
    libraries: Path
    url: str
    log_dir: Path
    headers: Mapping[str, str] = field(default_factory=dict)
    # per model: request parameters every inference carries (internal steps need their key)
    request_parameters: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def measure(
        self,
        model: str,
        input_data: Path,
        concurrency: int,
        settings: PerfSettings,
        timeout_s: float = 900.0,
        tag: str = "",
        retry_cap_ms: int | None = None,
        margin_s: float | None = None,
    ) -> PerfLevel:
        """Measure one level; an unstable one is retried once (if allowed) with a doubled window.

        ``tag`` goes into the CSV and log names (``perf_<model><tag>_c<N>_w<ms>``), so levels
        of the same model and concurrency on other inputs keep their own files.
        ``retry_cap_ms`` caps the retried window (:func:`retry_window_ms`: no retry when the
        window is at the cap already). With ``margin_s``, each perf_analyzer run may take
        :func:`run_timeout_s` of its own window instead of ``timeout_s``.

        Raises:
            PerfError: perf_analyzer failed (an error response, a crash, a timeout).

        """

        def limit(run: PerfSettings) -> float:
            return timeout_s if margin_s is None else run_timeout_s(run, margin_s)

        level = self._run(model, input_data, concurrency, settings, limit(settings), tag)
        retry = retry_window_ms(settings, retry_cap_ms)
        if not level.stable and retry is not None:
            longer = replace(settings, window_ms=retry)
            level = self._run(model, input_data, concurrency, longer, limit(longer), tag)
        return level

    def _run(
        self,
        model: str,
        input_data: Path,
        concurrency: int,
        settings: PerfSettings,
        timeout_s: float,
        tag: str = "",
    ) -> PerfLevel:
        stem = f"perf_{model}{tag}_c{concurrency}_w{settings.window_ms}"
        csv_file = self.log_dir / f"{stem}.csv"
        command = perf_command(
            self.binary,
            model,
            self.url,
            input_data,
            concurrency,
            settings,
            csv_file,
            self.headers,
            self.request_parameters.get(model),
        )
        csv_file.unlink(missing_ok=True)  # a stale file must not pass for this measurement
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(self.libraries)] + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else [])
        )
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise PerfError(
                f"perf_analyzer {model} c={concurrency} ran over {timeout_s:.0f} s"
            ) from None
        (self.log_dir / f"{stem}.log").write_text(
            " ".join(command) + f"\nexit {done.returncode}\n" + done.stdout + done.stderr,
            encoding="utf-8",
        )
        if done.returncode == UNSTABLE_EXIT:
            level = parse_unstable_passes(done.stdout, model, concurrency)
            return replace(level, window_ms=settings.window_ms)
        if done.returncode != 0:
            raise PerfError(
                f"perf_analyzer {model} c={concurrency} exited {done.returncode}: "
                + (done.stderr.strip() or done.stdout.strip())[-1500:]
            )
        (level,) = parse_perf_csv(csv_file.read_text(encoding="utf-8"), model)
        return replace(level, csv_file=csv_file.name, window_ms=settings.window_ms)
