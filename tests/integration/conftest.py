"""Session fixtures: a fixture model with known answers, its repository and a real tritonserver.

The server runs on free loopback ports and is stopped by PID at the end of the session. When
an integration test fails, the tail of the server log is added to its report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
from instructner_client import InstructNERClient, InstructNERError

from instructner.deploy.build import BuildResult
from instructner.deploy.server import TritonServer
from instructner.serving.triton_glue import INTERNAL_KEY_PARAMETER
from tests.harness import SERVE_COMMAND, build_test_repository, start_test_server

_RUNNING: dict[str, TritonServer] = {}
REPO = Path(__file__).resolve().parents[2]
SERVE_PORTS = (8000, 8001, 8002)  # make serve's defaults, which the README's snippets call
START_TIMEOUT = 600  # seconds: the build and a cold tritonserver on a busy 2-core machine


@pytest.fixture(scope="session")
def fixture_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The fixed-answer T5 and a repository serving it with three engine models."""
    return build_test_repository(tmp_path_factory.mktemp("serving-build"))


@pytest.fixture(scope="session")
def triton_server(
    fixture_build: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    """A ready tritonserver serving :func:`fixture_build` on free loopback ports."""
    server = start_test_server(fixture_build.repository, tmp_path_factory.mktemp("server"))
    _RUNNING["server"] = server
    try:
        yield server
    finally:
        _RUNNING.pop("server", None)
        server.stop()


@pytest.fixture
def client(triton_server: TritonServer) -> Iterator[grpcclient.InferenceServerClient]:
    """A gRPC client of the test server."""
    with grpcclient.InferenceServerClient(url=triton_server.config.grpc_url) as c:
        yield c


@pytest.fixture
def internal(triton_server: TritonServer) -> dict[str, str]:
    """The request parameters that let a test call an internal pipeline step directly."""
    return {INTERNAL_KEY_PARAMETER: triton_server.config.internal_key}


@pytest.fixture(scope="session")
def checkpoint(fixture_build: BuildResult) -> Path:
    """The fixture model's Hugging Face checkpoint (for in-process references)."""
    return fixture_build.checkpoint


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed:
        return
    # the session server, and any server a module fixture of the failing test started
    servers = [_RUNNING.get("server")] + list(getattr(item, "funcargs", {}).values())
    shown: set[int] = set()
    for server in servers:
        if isinstance(server, TritonServer) and id(server) not in shown:
            shown.add(id(server))
            report.sections.append(("tritonserver log (tail)", server.log_tail()))


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def make_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`make serve` as the README gives it, from the checkout; yields its log file."""
    taken = [port for port in SERVE_PORTS if _port_taken(port)]
    assert not taken, f"make serve's default ports {taken} are in use: stop what holds them"
    log = tmp_path_factory.mktemp("make-serve") / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            SERVE_COMMAND, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with InstructNERClient("localhost:8001", timeout=5.0) as client:
            while True:
                assert process.poll() is None, f"make serve exited: {log.read_text()[-3000:]}"
                try:
                    if client.is_ready():
                        break
                except InstructNERError:  # not listening yet, or the model still loading
                    pass
                assert time.monotonic() < deadline, f"not ready: {log.read_text()[-3000:]}"
                time.sleep(2)
        yield log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
