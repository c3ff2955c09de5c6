"""A hardened tritonserver under attack, overload and a crash (module-scoped, stopped by PID).

The server serves the session's fixture model with the launcher's security options: gRPC over
TLS (certificates made here), the admin endpoints (model-repository, shared-memory, trace,
logging) of gRPC and HTTP behind a key header, model control mode none, and a short queue on
``instruction_ner`` (4 waiting requests) so that overload is easy to cause. The tests run in
file order; the last one kills the server mid-load and restarts it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from instructner_client import (
    Entity,
    InstructNERClient,
    InstructNERError,
    OverloadedError,
    RetryPolicy,
    ServerUnavailableError,
    TLSConfig,
)
from tritonclient.utils import InferenceServerException

from bench.serverstats import process_tree_rss
from instructner.deploy.build import BuildResult, BuildSettings, EngineVariant, build_repository
from instructner.deploy.procfs import mapped_shared_memory
from instructner.deploy.server import (
    RestrictedProtocols,
    ServerConfig,
    ServerTLS,
    TritonServer,
)
from instructner.method.labels import get_verbalizer
from instructner.serving.limits import Limits
from tests.certificates import make_certificates
from tests.harness import ANY_SCORE, FIXTURE_LABELS

pytestmark = pytest.mark.integration

MODEL = "instruction_ner"
LABELS = list(FIXTURE_LABELS)
HEADER = "x-admin"
GRPC_HEADER = f"triton-grpc-protocol-{HEADER}"  # how gRPC clients send it
QUEUE = 4  # instruction_ner's max_queue_size here
TIMEOUT = 60.0
TEXTS = (
    "EU officials met in Brussels on Monday .",
    "Brussels hosted the EU summit .",
    "Nothing here mentions any of them .",
    "The EU met . Then Brussels spoke .",
)
# The fixed-answer model answers "EU is an organization, Brussels is a location." to every
# NER prompt, so the served entities of each text are known.
EXPECTED = {
    TEXTS[0]: [
        Entity("EU", "organization", 0, 2, ANY_SCORE),
        Entity("Brussels", "location", 20, 28, ANY_SCORE),
    ],
    TEXTS[1]: [
        Entity("Brussels", "location", 0, 8, ANY_SCORE),
        Entity("EU", "organization", 20, 22, ANY_SCORE),
    ],
    TEXTS[2]: [],
    TEXTS[3]: [
        Entity("EU", "organization", 4, 6, ANY_SCORE),
        Entity("Brussels", "location", 18, 26, ANY_SCORE),
    ],
}


@dataclass
class Hardened:
    server: TritonServer
    key: str
    certificates: Path

    @property
    def url(self) -> str:
        return f"localhost:{self.server.config.grpc_port}"

    @property
    def tls(self) -> TLSConfig:
        return TLSConfig(root_certificates=self.certificates / "ca.pem")

    def client(self, **options) -> InstructNERClient:
        return InstructNERClient(self.url, tls=self.tls, timeout=TIMEOUT, **options)

    def raw_grpc(self) -> grpcclient.InferenceServerClient:
        return grpcclient.InferenceServerClient(
            self.url, ssl=True, root_certificates=str(self.certificates / "ca.pem")
        )

    def raw_http(self) -> httpclient.InferenceServerClient:
        return httpclient.InferenceServerClient(self.server.config.http_url)

    def rss_kib(self) -> int:
        assert self.server.pid is not None
        return int(process_tree_rss(self.server.pid)["total_kib"])


@pytest.fixture(scope="module")
def hardened(
    fixture_build: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hardened]:
    work = tmp_path_factory.mktemp("hardened")
    certificates = make_certificates(work, ca_name="reliability-ca", clients=())
    build = build_repository(
        BuildSettings(
            model_dir=fixture_build.checkpoint,
            out_dir=work / "build",
            engines=(EngineVariant("engine", "ctranslate2", "float32"),),
            # 512 prompt tokens: the ATIS label set (83 words) fits, as in production.
            limits=Limits(max_text_chars=5000, max_input_tokens=512, max_output_tokens=48),
            max_batch_size=16,
            inter_threads=1,
            intra_threads=1,
            bls_instances=2,
            max_queue_size=QUEUE,
        )
    )
    key = secrets.token_urlsafe(24)  # made per run: never written to the repository
    config = ServerConfig.on_free_ports(
        repository=build.repository,
        workdir=work / "server",
        restricted=RestrictedProtocols(HEADER, key),
        tls=ServerTLS(certificates / "server.pem", certificates / "server.key"),
    )
    server = TritonServer(config)
    server.start()
    try:
        server.wait_ready(240, [MODEL, "engine"])
        yield Hardened(server, key, certificates)
    finally:
        server.stop()


# TLS and the key header.


def test_inference_works_over_tls_without_the_admin_key(hardened: Hardened):
    with hardened.client() as client:
        assert client.ner(TEXTS[0], labels=LABELS) == EXPECTED[TEXTS[0]]


def test_a_plaintext_client_cannot_use_the_tls_endpoint(hardened: Hardened):
    with InstructNERClient(hardened.url, timeout=TIMEOUT, retry=RetryPolicy(1)) as client:
        with pytest.raises(ServerUnavailableError):
            client.ner(TEXTS[0], labels=LABELS)


ADMIN_CALLS = {
    "unload a model": lambda c, h: c.unload_model("engine", headers=h),
    "load a model": lambda c, h: c.load_model("engine", headers=h),
    "list the repository": lambda c, h: c.get_model_repository_index(headers=h),
    "change log settings": lambda c, h: c.update_log_settings({"log_verbose_level": 1}, headers=h),
    "change trace settings": lambda c, h: c.update_trace_settings(
        settings={"trace_level": ["TIMESTAMPS"]}, headers=h
    ),
    "register shared memory": lambda c, h: c.register_system_shared_memory(
        "region", "/triton-test-region", 64, headers=h
    ),
    "read shared memory status": lambda c, h: c.get_system_shared_memory_status(headers=h),
}


@pytest.mark.parametrize("call", list(ADMIN_CALLS))
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_grpc_admin_endpoints_refuse_calls_without_the_right_key(hardened: Hardened, call, key):
    headers = None if key is None else {GRPC_HEADER: key}
    with hardened.raw_grpc() as client:
        with pytest.raises(InferenceServerException) as caught:
            ADMIN_CALLS[call](client, headers)
        assert caught.value.status() == "StatusCode.UNAVAILABLE"
        assert caught.value.message() == (
            f"This protocol is restricted, expecting header '{GRPC_HEADER}'"
        )
        assert client.is_model_ready("engine")


@pytest.mark.parametrize(
    "call", ["unload a model", "list the repository", "change log settings", "load a model"]
)
def test_http_admin_endpoints_refuse_calls_without_the_key(hardened: Hardened, call):
    client = hardened.raw_http()
    try:
        with pytest.raises(InferenceServerException) as caught:
            ADMIN_CALLS[call](client, None)
        assert caught.value.status() == "403"
        assert f"This API is restricted, expecting header '{HEADER}'" in caught.value.message()
    finally:
        client.close()


def test_with_the_key_models_still_cannot_be_unloaded_or_loaded(hardened: Hardened):
    headers = {GRPC_HEADER: hardened.key}
    with hardened.raw_grpc() as client:
        assert client.get_system_shared_memory_status(headers=headers) is not None  # key works
        for call in ("unload a model", "load a model"):
            with pytest.raises(InferenceServerException) as caught:
                ADMIN_CALLS[call](client, headers)
            assert "explicit model load / unload is not allowed" in caught.value.message()
        assert client.is_model_ready("engine") and client.is_model_ready(MODEL)


def test_the_key_is_not_in_the_server_log(hardened: Hardened):
    log = hardened.server.log_path.read_text(encoding="utf-8", errors="replace")
    assert log and hardened.key not in log


def test_the_83_atis_labels_are_served(hardened: Hardened):
    words = list(get_verbalizer("atis").words)
    text = "show me flights from boston to denver on monday morning"
    with hardened.client() as client:
        result = client.analyze("ner", text, labels=words)
    assert {e.label for e in result.entities} <= set(words)
    assert [(w.start, w.end) for w in result.windows] == [(0, len(text))]
    assert result.windows[0].input_tokens > 300  # the 83 options are all in the prompt


# Overload.


@dataclass
class LoadOutcome:
    answers: list[tuple[str, list[Entity]]]
    errors: list[BaseException]


def run_load(hardened: Hardened, workers: int, calls: int, retry: RetryPolicy) -> LoadOutcome:
    """``workers`` threads, each with its own client, make ``calls`` NER calls."""
    outcome = LoadOutcome([], [])
    lock = threading.Lock()

    def work(index: int) -> None:
        with hardened.client(retry=retry) as client:
            for n in range(calls):
                text = TEXTS[(index + n) % len(TEXTS)]
                try:
                    answer = client.ner(text, labels=LABELS)
                except InstructNERError as error:
                    with lock:
                        outcome.errors.append(error)
                else:
                    with lock:
                        outcome.answers.append((text, answer))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def test_overload_is_shed_with_unavailable_and_no_answer_is_wrong(
    hardened: Hardened, caplog, record_property
):
    with hardened.client() as client:  # warm-up, and the reference answers without load
        reference = {text: client.ner(text, labels=LABELS) for text in TEXTS * 2}
    assert reference == EXPECTED
    baseline = hardened.rss_kib()

    retry = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.5)
    with caplog.at_level(logging.INFO, logger="instructner_client"):
        outcome = run_load(hardened, workers=64, calls=6, retry=retry)

    wrong = [(text, answer) for text, answer in outcome.answers if answer != EXPECTED[text]]
    assert not wrong
    other = [e for e in outcome.errors if not isinstance(e, ServerUnavailableError)]
    assert not other, other[:3]
    assert outcome.errors, "64 concurrent callers never overflowed a queue of 4"
    assert all("Exceeds maximum queue size" in str(e) for e in outcome.errors)
    assert all(isinstance(e, OverloadedError) for e in outcome.errors)
    assert outcome.answers, "overload must not starve every caller"
    assert "retrying in" in caplog.text  # rejected calls were retried with backoff
    assert hardened.server.process is not None and hardened.server.process.poll() is None

    with hardened.client() as client:  # served normally again, with the same answers
        assert {text: client.ner(text, labels=LABELS) for text in TEXTS} == EXPECTED
    after = hardened.rss_kib()
    record_property("overload_answers", len(outcome.answers))
    record_property("overload_rejected_calls", len(outcome.errors))
    record_property("rss_mib_before_after", (baseline // 1024, after // 1024))
    assert after <= baseline * 1.25 + 64 * 1024, (baseline, after)


# A crash under load, and the restart.


def _shared_memory_regions(pid: int) -> set[Path]:
    """The python backend's /dev/shm regions that process ``pid`` has mapped."""
    return {Path("/dev/shm", name) for name in mapped_shared_memory(pid)}


def _wait_for_exit(pids: list[int], timeout_s: float = 60.0) -> None:
    """Wait until the processes ``pids`` are gone; SIGKILL (by PID) any left after the wait."""
    deadline = time.monotonic() + timeout_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists()]
        time.sleep(0.2)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_server_killed_mid_load_gives_server_unavailable_then_serves_after_restart(
    hardened: Hardened,
):
    server = hardened.server
    assert server.process is not None and server.pid is not None
    regions = _shared_memory_regions(server.pid)
    stubs = [p["pid"] for p in process_tree_rss(server.pid)["processes"] if p["pid"] != server.pid]
    answered = threading.Event()
    errors: list[BaseException] = []
    wrong: list[object] = []
    lock = threading.Lock()
    # One client lives through the crash: its channel must reconnect to the restarted server.
    survivor = hardened.client(retry=RetryPolicy(max_attempts=20, max_backoff=1.0))
    assert survivor.ner(TEXTS[1], labels=LABELS) == EXPECTED[TEXTS[1]]

    def work(index: int) -> None:
        with hardened.client(retry=RetryPolicy(2, initial_backoff=0.05)) as client:
            while True:
                text = TEXTS[index % len(TEXTS)]
                try:
                    answer = client.ner(text, labels=LABELS)
                except InstructNERError as error:
                    with lock:
                        errors.append(error)
                    return
                if answer != EXPECTED[text]:
                    with lock:
                        wrong.append(answer)
                answered.set()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    try:
        for thread in threads:
            thread.start()
        assert answered.wait(TIMEOUT), "no answer before the kill"
        server.process.kill()  # SIGKILL by PID: no clean shutdown
        server.process.wait()
        for thread in threads:
            thread.join(TIMEOUT + 30)
        assert not any(t.is_alive() for t in threads), "a caller hung after the crash"
        assert not wrong
        # Each caller failed fast as unavailable, none waited for its 60 s deadline.
        assert len(errors) == len(threads)
        assert all(isinstance(e, ServerUnavailableError) for e in errors), errors

        _wait_for_exit(stubs)  # the python stubs notice their server is gone and quit
        server.start()  # same ports, same repository
        server.wait_ready(240, [MODEL])
        assert survivor.ner(TEXTS[0], labels=LABELS) == EXPECTED[TEXTS[0]]
    finally:
        survivor.close()
        for region in regions:  # a killed server leaves its shared memory behind
            with contextlib.suppress(FileNotFoundError):
                region.unlink()
