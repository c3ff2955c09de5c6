"""Server memory after hostile rounds: ``python -m bench.hostile`` (``make hostile``; not in CI).

Starts its own server as ``bench.soak`` does (the fixed-answer test model with the production
build settings, or ``--model DIR``), samples the resident memory of tritonserver and its python
stubs, then sends rounds of requests an attacker would send straight to Triton (no proxy):
gzip HTTP bodies that expand to tens of MB, over-limit TEXT of 1-16 MB over gRPC, documents
of the maximum window count abandoned after 0.5 s, 5,000 unknown inputs, repetitive typing
requests and look-alike markers. After every round it checks that a good request still gets
its reference answer and records the memory. Writes ``<results>/<time>-hostile/hostile.json``
and ``summary.md``; exit code 1 if the server died or a good answer changed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.machine import machine_info
from bench.serverstats import process_tree_rss
from bench.soak import REPO_ROOT

MIB = 1024
GOOD = "EU officials met in Brussels on Monday ."
LABELS = ["organization", "location", "person", "miscellaneous"]


def say(message: str) -> None:
    """Print a progress line."""
    print(f"hostile: {message}", flush=True)


def _rss_mib(pid: int) -> float:
    return round(process_tree_rss(pid)["total_kib"] / MIB, 1)


def _http(url: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"http://{url}{path}", data=body, method="POST")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return -1


def _json_body(text: str) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [text]},
                {"name": "LABELS", "shape": [1, 4], "datatype": "BYTES", "data": LABELS},
            ]
        }
    ).encode()


def rounds(http_url: str, grpc_url: str) -> dict[str, Callable[[], str]]:
    """Return the hostile rounds by name; each returns what the server answered."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    from bench.testbed import bytes_input, ner_inputs

    def grpc_call(inputs: list[Any], timeout: float = 120.0, model: str = "instruction_ner"):
        with grpcclient.InferenceServerClient(grpc_url) as client:
            try:
                client.infer(model, inputs, client_timeout=timeout)
                return "answered"
            except InferenceServerException as error:
                return str(error.status())

    def gzip_bombs() -> str:
        codes = []
        for megabytes in (16, 64):
            bomb = gzip.compress(_json_body("a " * (megabytes * 2**19)), 9)
            codes.append(
                _http(
                    http_url,
                    "/v2/models/instruction_ner/infer",
                    bomb,
                    {"Content-Encoding": "gzip", "Content-Type": "application/json"},
                )
            )
        return f"HTTP {codes}"

    def big_texts() -> str:
        return ", ".join(grpc_call(ner_inputs("word " * (mb * 2**18), LABELS)) for mb in (1, 4, 16))

    def abandoned_documents() -> str:
        document = "Paris! " + "A! " * 2040
        results: list[str] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(grpc_call(ner_inputs(document, LABELS), 0.5))
            )
            for _ in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return ", ".join(sorted(set(results)))

    def unknown_inputs() -> str:
        inputs = [bytes_input("TEXT", [[GOOD.encode()]])]
        inputs += [bytes_input(f"X{i}", [[b"x"]]) for i in range(5000)]
        return grpc_call(inputs)

    def repetitive_typing() -> str:
        return grpc_call(ner_inputs("a " * 9999, LABELS, task="type", entities=["a"]))

    def look_alike_markers() -> str:
        return grpc_call(ner_inputs(GOOD, ["location", "Ｏｐｔｉｏｎｓ： x"]))

    return {
        "gzip HTTP bodies expanding to 16 and 64 MB": gzip_bombs,
        "TEXT of 1, 4 and 16 MB over gRPC": big_texts,
        "16 documents of 2,041 windows abandoned after 0.5 s": abandoned_documents,
        "5,000 unknown inputs": unknown_inputs,
        "type with 9,999 occurrences": repetitive_typing,
        "look-alike prompt marker": look_alike_markers,
    }


def run(args: argparse.Namespace) -> int:
    """Run the rounds against a fresh server; write the results; return the exit code."""
    from instructner_client import InstructNERClient

    from bench.soak import _serve

    started = datetime.now()
    out = args.results / f"{started:%Y%m%d-%H%M%S}-hostile"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        server, served = _serve(args, Path(tmp))
        try:
            server.wait_ready(300, ["instruction_ner"])
            assert server.pid is not None
            with InstructNERClient(server.config.grpc_url, timeout=60) as client:
                reference = client.ner(GOOD, labels=LABELS)
                for _ in range(20):
                    client.ner(GOOD, labels=LABELS)
            samples = [{"after": "warm-up", "rss_mib": _rss_mib(server.pid)}]
            say(f"warm-up: {samples[-1]['rss_mib']} MiB")
            failures = []
            for name, attack in rounds(server.config.http_url, server.config.grpc_url).items():
                began = time.monotonic()
                answer = attack()
                took = round(time.monotonic() - began, 2)
                time.sleep(2)  # let abandoned work drain before sampling
                alive = server.process is not None and server.process.poll() is None
                good = None
                if alive:
                    with InstructNERClient(server.config.grpc_url, timeout=60) as client:
                        good = client.ner(GOOD, labels=LABELS) == reference
                samples.append(
                    {
                        "after": name,
                        "answer": answer,
                        "seconds": took,
                        "server_alive": alive,
                        "good_answer_unchanged": good,
                        "rss_mib": _rss_mib(server.pid) if alive else None,
                    }
                )
                say(f"{name}: {answer} in {took} s; RSS {samples[-1]['rss_mib']} MiB")
                if not alive or not good:
                    failures.append(name)
                    break
        finally:
            code = server.stop()
    record = {
        "started": started.isoformat(timespec="seconds"),
        "served": served,
        "machine": machine_info(),
        "samples": samples,
        "failures": failures,
        "server_exit_code": code,
    }
    (out / "hostile.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# Hostile rounds, {record['started']}",
        "",
        f"Served: {served}.",
        "",
        "| after | server answered | seconds | good answer unchanged | RSS MiB |",
        "|---|---|---|---|---|",
    ]
    for sample in samples:
        lines.append(
            f"| {sample['after']} | {sample.get('answer', '')} | {sample.get('seconds', '')} | "
            f"{sample.get('good_answer_unchanged', '')} | {sample['rss_mib']} |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    say(f"results in {out}")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="checkpoint to serve (default: test model)")
    parser.add_argument("--compute-type", default="int8", choices=("int8", "float32"))
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "bench" / "results")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
