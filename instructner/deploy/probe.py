"""Health probe that exercises the server for real: ``python -m instructner.deploy.probe``.

Triton's ``/v2/health/ready`` stays 200 when a python-backend model process has died (its
requests fail for ever), so container and Kubernetes probes run this instead. It passes
(exit 0) only when

1. a real inference of ``instruction_ner`` answers (HTTP on the server's own loopback port:
   no TLS, no client certificate, no dependency beyond the standard library), and
2. with ``--repository``: every python-backend model instance the repository declares has a
   live process below a running tritonserver (found in ``/proc``; the probe runs in the
   server's container, so it sees the same processes).

Exit 1 with one line on stderr saying what failed. Kubernetes: readiness and liveness
``exec`` probes (deploy/k8s/deployment.yaml); compose: the healthcheck.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from instructner.deploy.procfs import STUB_BINARY, process_alive, python_stubs, runs_tritonserver
from instructner.deploy.supervise import declared_instances

PROBE_TEXT = "Probe : Ada Lovelace visited London ."


def triton_pids(proc: Path = Path("/proc")) -> list[int]:
    """Return the process ids of running ``tritonserver`` processes."""
    pids = (int(entry.name) for entry in proc.iterdir() if entry.name.isdigit())
    return [pid for pid in pids if runs_tritonserver(pid, proc) and process_alive(pid, proc)]


def missing_processes(repository: Path, proc: Path = Path("/proc")) -> list[str]:
    """Return what is missing: "<model>: 1 of 2 processes alive" lines (empty when whole)."""
    declared = declared_instances(repository)
    servers = triton_pids(proc)
    if not servers:
        return ["no tritonserver process is running"]
    alive: dict[str, int] = {}
    for server in servers:
        for stub in python_stubs(server, proc):
            if process_alive(stub.pid, proc):
                model = stub.instance.rsplit("_", 2)[0]
                alive[model] = alive.get(model, 0) + 1
    return [
        f"{model}: {alive.get(model, 0)} of {count} {STUB_BINARY} processes alive"
        for model, count in declared.items()
        if alive.get(model, 0) < count
    ]


def infer_once(url: str, timeout_s: float) -> str | None:
    """Run one NER request over HTTP; return None on success, else what went wrong."""
    body = {
        "inputs": [
            {"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [PROBE_TEXT]},
            {"name": "LABELS", "shape": [1, 1], "datatype": "BYTES", "data": ["person"]},
        ],
        "outputs": [{"name": "GENERATED_TEXT"}],
    }
    request = urllib.request.Request(
        f"http://{url}/v2/models/instruction_ner/infer",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        return f"inference answered HTTP {error.code}: {error.read()[:300]!r}"
    except (OSError, ValueError) as error:
        return f"inference failed: {error}"
    if not any(o.get("name") == "GENERATED_TEXT" for o in answer.get("outputs", [])):
        return "inference answered without GENERATED_TEXT"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Probe once; exit code 0 when healthy."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default="127.0.0.1:8000", help="Triton's HTTP host:port")
    parser.add_argument("--timeout", type=float, default=8.0, help="seconds for the inference")
    parser.add_argument(
        "--repository", type=Path, help="model repository: check its model processes are alive"
    )
    parser.add_argument(
        "--processes-only",
        action="store_true",
        help="no inference (liveness: a saturated server is slow, not dead)",
    )
    args = parser.parse_args(argv)
    problems = []
    if args.repository is not None:
        problems += missing_processes(args.repository)
    failure = None if args.processes_only else infer_once(args.url, args.timeout)
    if failure:
        problems.append(failure)
    if problems:
        sys.stderr.write("unhealthy: " + "; ".join(problems) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
