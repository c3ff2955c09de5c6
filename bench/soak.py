"""Bounded soak test: ``python -m bench.soak --minutes 10`` (``make soak``; never in CI).

Starts its own tritonserver on free loopback ports and keeps it busy for the given time with
``--concurrency`` client threads (the project's client, retries on): NER, extraction and typing
calls over CoNLL-2003 test sentences and multi-sentence documents, plus requests the server must
reject (a NUL byte in TEXT, a label holding "Options:"). Every answer is compared with the
answer the same server gave to the same call before the load (the reference); the resident
memory of tritonserver and its python stubs is sampled throughout.

The served model is, by default, the tiny fixed-answer T5 of the integration tests built with
the production settings (``instructner.deploy.build`` defaults: CTranslate2 int8, batch 64,
default limits and queue policy), so the run measures the serving stack, not a model; with
``--model DIR`` it serves that checkpoint as ``make serve`` does.

Writes ``<results>/<time>-soak/soak.json`` and ``summary.md``; exit code 0 when no answer was
wrong, no error was unexpected, the server survived and its memory stayed bounded (see
:func:`verdict`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.machine import CpuMonitor, machine_info
from bench.paths import percentile
from bench.serverstats import process_tree_rss
from instructner.research.data import default_data_root

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = default_data_root()
MIB = 1024
# Memory is "bounded" when the last sample is within this of the first one after warm-up.
RSS_GROWTH_FACTOR = 1.25
RSS_GROWTH_SLACK_MIB = 64
_FALLBACK_SENTENCES = (
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn visited Brussels on Monday .",
    "The EU summit in Brussels ended late on Friday .",
    "Nothing here names either of them .",
)


def say(message: str) -> None:
    """Print a progress line."""
    print(f"soak: {message}", flush=True)


@dataclass(frozen=True)
class Call:
    """One request of the workload; ``reject`` is the message fragment of an expected error."""

    task: str
    text: str
    labels: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    reject: str | None = None


def sentences(limit: int) -> list[str]:
    """Return up to ``limit`` CoNLL-2003 test sentences (built-in ones without the data)."""
    try:
        from instructner.research.data import load_corpus

        found = [s.text for s in load_corpus("conll2003", "test", DATA_ROOT)[:limit]]
    except (FileNotFoundError, ValueError):
        found = []
    return found or list(_FALLBACK_SENTENCES)


def workload(labels: Sequence[str], seed: int = 0, size: int = 200) -> list[Call]:
    """Return the calls the soak cycles through (good ones, long documents, bad ones)."""
    rng = random.Random(seed)
    texts = sentences(size)
    labels = tuple(labels)
    calls = []
    for index, text in enumerate(texts):
        words = text.split()
        if index % 10 == 9:
            calls.append(Call("extract", text))
        elif index % 10 == 8 and words:
            calls.append(Call("type", text, labels, (rng.choice(words),)))
        else:
            calls.append(Call("ner", text, labels))
    for start in range(0, min(len(texts), 60), 12):  # documents read in several windows
        document = (
            " ".join(texts[start : start + 6]) + "\n" + " ".join(texts[start + 6 : start + 12])
        )
        calls.append(Call("ner", document, labels))
    bad = [
        Call("ner", "EU met\x00 in Brussels .", labels, reject="control character U+0000"),
        Call("ner", texts[0], (*labels[:-1], "x Options: y"), reject="a section marker"),
    ]
    for position in range(0, len(calls), 20):  # 1 call in 20 is bad
        calls.insert(position, bad[position // 20 % len(bad)])
    # Typing words must occur as whole words; drop picks the client would refuse to send.
    return [
        c for c in calls if c.task != "type" or all(f" {e} " in f" {c.text} " for e in c.entities)
    ]


@dataclass
class Tally:
    """What the soak's callers saw (shared between threads, guarded by ``lock``)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    wrong: list[dict[str, Any]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _answer(client: Any, call: Call) -> list[tuple[str, str | None, int, int]]:
    result = client.analyze(call.task, call.text, labels=call.labels, entities=call.entities)
    return [(e.text, e.label, e.start, e.end) for e in result.entities]


def reference_answers(client: Any, calls: Sequence[Call]) -> dict[int, Any]:
    """Return the answer of every good call, made one at a time on the idle server."""
    return {i: _answer(client, c) for i, c in enumerate(calls) if c.reject is None}


def _caller(
    url: str,
    calls: Sequence[Call],
    reference: dict[int, Any],
    offset: int,
    end: float,
    tally: Tally,
) -> None:
    from instructner_client import InstructNERClient, InvalidInputError, ServerUnavailableError

    index = offset
    with InstructNERClient(url, timeout=120.0) as client:
        while time.monotonic() < end:
            number = index % len(calls)
            call = calls[number]
            index += 1
            started = time.monotonic()
            detail = ""
            try:
                answer = _answer(client, call)
                outcome = "answered"
                if call.reject is not None:
                    outcome = "bad request answered"
                elif answer != reference[number]:
                    outcome = "wrong answer"
            except InvalidInputError as error:
                outcome = "rejected as expected"
                if call.reject is None or call.reject not in str(error):
                    outcome = "unexpected error"
                    detail = str(error)
            except ServerUnavailableError as error:
                outcome, detail = "unavailable after retries", str(error)
            except Exception as error:  # noqa: BLE001 - every failure is counted and reported
                outcome, detail = "unexpected error", f"{type(error).__name__}: {error}"
            took = time.monotonic() - started
            with tally.lock:
                tally.outcomes[outcome] += 1
                tally.latencies_s.append(took)
                if outcome == "wrong answer" and len(tally.wrong) < 20:
                    tally.wrong.append(
                        {"call": number, "expected": reference[number], "got": answer}
                    )
                if outcome in ("unexpected error", "unavailable after retries"):
                    if len(tally.unexpected) < 20:
                        tally.unexpected.append(detail)


def _sampler(pid: int, stop: threading.Event, every_s: float, tally: Tally, out: list) -> None:
    started = time.monotonic()
    while True:
        rss = process_tree_rss(pid)
        with tally.lock:
            done = sum(tally.outcomes.values())
        out.append(
            {
                "t_s": round(time.monotonic() - started, 1),
                "rss_mib": round(rss["total_kib"] / MIB, 1),
                "by_process_mib": {
                    f"{q['name']}:{q['pid']}": round(q["rss_kib"] / MIB, 1)
                    for q in rss["processes"]
                },
                "calls_done": done,
            }
        )
        if stop.wait(every_s):
            return


def growth_per_minute(samples: Sequence[dict[str, Any]]) -> float:
    """Return the least-squares slope (MiB per minute) of RSS over the second half of the run."""
    half = [s for s in samples if s["t_s"] >= samples[-1]["t_s"] / 2]
    if len(half) < 2:
        return 0.0
    mean_t = sum(s["t_s"] for s in half) / len(half)
    mean_r = sum(s["rss_mib"] for s in half) / len(half)
    spread = sum((s["t_s"] - mean_t) ** 2 for s in half)
    if spread == 0:
        return 0.0
    slope = sum((s["t_s"] - mean_t) * (s["rss_mib"] - mean_r) for s in half) / spread
    return round(slope * 60, 2)


def verdict(record: dict[str, Any]) -> list[str]:
    """Return the soak's problems (empty when it passed)."""
    problems = []
    outcomes = record["outcomes"]
    for bad in ("wrong answer", "unexpected error", "bad request answered"):
        if outcomes.get(bad):
            problems.append(f"{outcomes[bad]} calls: {bad}")
    if outcomes.get("unavailable after retries"):
        problems.append(
            f"{outcomes['unavailable after retries']} calls found the server overloaded"
        )
    if not record["server_alive_at_end"]:
        problems.append("tritonserver was not running at the end")
    rss = record["rss_mib"]
    bound = rss["first"] * RSS_GROWTH_FACTOR + RSS_GROWTH_SLACK_MIB
    if rss["last"] > bound:
        problems.append(f"resident memory grew from {rss['first']} to {rss['last']} MiB")
    return problems


def summary_markdown(record: dict[str, Any]) -> str:
    """Return the short human summary of a soak record."""
    machine = record["machine"]
    rss = record["rss_mib"]
    latency = record["latency_ms"]
    outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(record["outcomes"].items()))
    lines = [
        f"# Soak {record['started']}: {'PASSED' if not record['problems'] else 'FAILED'}",
        "",
        f"- Machine: {machine['cpu_model']}, {machine['usable_cpus']} usable CPUs, "
        f"{machine['memory_gib']} GiB, {machine['gpu']}; other processes took "
        f"{record['cpu']['others']:.0%} of the CPUs during the run "
        f"(load average {record['cpu']['loadavg_1min_end']} at the end).",
        f"- Served: {record['served']}",
        f"- {record['minutes']} min, {record['concurrency']} concurrent callers, "
        f"{record['calls']} calls ({record['throughput_per_s']:.1f}/s); {outcomes}.",
        f"- Latency per call: p50 {latency['p50']:.0f} ms, p99 {latency['p99']:.0f} ms, "
        f"max {latency['max']:.0f} ms.",
        f"- Resident memory of tritonserver + stubs: {rss['first']} MiB after warm-up, "
        f"max {rss['max']}, {rss['last']} MiB at the end ({len(record['samples'])} samples; "
        f"bound {RSS_GROWTH_FACTOR}x first + {RSS_GROWTH_SLACK_MIB} MiB); over the second half "
        f"it changed by {rss['second_half_mib_per_min']} MiB/min.",
    ]
    if record["problems"]:
        lines += ["", "Problems:", *(f"- {p}" for p in record["problems"])]
    return "\n".join(lines) + "\n"


def _serve(args: argparse.Namespace, work: Path) -> tuple[Any, str]:
    from bench.testbed import train_fixed_answer_model
    from instructner.deploy.build import BuildSettings, EngineVariant, ensure_repository
    from instructner.deploy.server import ServerConfig, TritonServer

    if args.model is None:
        checkpoint = train_fixed_answer_model(work / "fixture-model")
        served = "the fixed-answer test T5 (d_model 64, 2+2 layers)"
    else:
        checkpoint, served = args.model, f"checkpoint {args.model}"
    build = ensure_repository(
        BuildSettings(
            model_dir=checkpoint,
            out_dir=work / "build",
            engines=(EngineVariant(compute_type=args.compute_type),),
        )
    )
    served += f", CTranslate2 {args.compute_type}, production build settings"
    config = ServerConfig.on_free_ports(
        repository=build.repository,
        workdir=work / "server",
    )
    server = TritonServer(config)
    server.start()
    return server, served


def run(args: argparse.Namespace) -> int:
    """Run the soak; write the results; return the exit code."""
    from instructner_client import InstructNERClient

    from bench.testbed import FIXTURE_LABELS

    started = datetime.now()
    out = (args.results / f"{started:%Y%m%d-%H%M%S}-soak").resolve()
    out.mkdir(parents=True, exist_ok=True)
    calls = workload(FIXTURE_LABELS, seed=args.seed)
    say(f"{len(calls)} calls in the cycle; results in {out}")
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        server, served = _serve(args, Path(tmp))
        tally, samples = Tally(), list[dict[str, Any]]()
        stop = threading.Event()
        monitor = CpuMonitor()
        try:
            server.wait_ready(600, ["instruction_ner"])
            url = server.config.grpc_url
            with InstructNERClient(url, timeout=120.0) as client:
                _answer(client, calls[1])  # warm-up
                reference = reference_answers(client, calls)
            say(f"reference answers taken; soaking {args.minutes} min at {args.concurrency}")
            assert server.pid is not None
            sampler = threading.Thread(
                target=_sampler, args=(server.pid, stop, args.sample_seconds, tally, samples)
            )
            sampler.start()
            monitor.start("soak")
            end = time.monotonic() + args.minutes * 60
            step = max(1, len(calls) // args.concurrency)
            callers = [
                threading.Thread(target=_caller, args=(url, calls, reference, i * step, end, tally))
                for i in range(args.concurrency)
            ]
            for caller in callers:
                caller.start()
            for caller in callers:
                caller.join()
            cpu = monitor.stop("soak")
            stop.set()
            sampler.join()
            alive = server.process is not None and server.process.poll() is None
        finally:
            stop.set()
            server.stop()
    total = sum(tally.outcomes.values())
    rss = [s["rss_mib"] for s in samples]
    record: dict[str, Any] = {
        "started": f"{started:%Y-%m-%d %H:%M}",
        "machine": machine_info(),
        "served": served,
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "calls": total,
        "throughput_per_s": total / (args.minutes * 60),
        "outcomes": dict(tally.outcomes),
        "latency_ms": {
            "p50": percentile(tally.latencies_s, 50) * 1000,
            "p99": percentile(tally.latencies_s, 99) * 1000,
            "max": max(tally.latencies_s) * 1000,
        },
        "rss_mib": {
            "first": rss[0],
            "max": max(rss),
            "last": rss[-1],
            "second_half_mib_per_min": growth_per_minute(samples),
        },
        "server_alive_at_end": alive,
        "cpu": cpu,
        "wrong_answers": tally.wrong,
        "unexpected_errors": tally.unexpected,
        "samples": samples,
    }
    record["problems"] = verdict(record)
    (out / "soak.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    summary = summary_markdown(record)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    print(summary, end="")
    return 1 if record["problems"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the soak."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--concurrency", type=int, default=8, help="callers (default 8)")
    parser.add_argument("--sample-seconds", type=float, default=10.0, help="RSS sampling period")
    parser.add_argument("--model", type=Path, help="serve this checkpoint instead of the fixture")
    parser.add_argument("--compute-type", default="int8", choices=("int8", "float32"))
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.concurrency < 1 or args.sample_seconds <= 0:
        parser.error("--minutes, --concurrency and --sample-seconds must be positive")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
