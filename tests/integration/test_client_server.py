"""The client library and CLI against a real tritonserver serving a tiny untrained model.

The model answers nonsense (random weights), so these tests check the contract, not the
entities: every call returns decoded, offset-checked results for the text that was sent, in
order, and each error class comes from the situation it names. Servers with TLS, mutual TLS
and a header-restricted inference protocol are started on the same model repository.
"""

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from instructner_client import (
    AsyncInstructNERClient,
    DeadlineExceededError,
    Entity,
    Extraction,
    InstructNERClient,
    InstructNERError,
    InvalidInputError,
    Keepalive,
    ModelNotReadyError,
    RetryPolicy,
    ServerUnavailableError,
    TLSConfig,
)

from instructner.serving import server as server_module
from instructner.serving.build import BuildSettings, build_repository
from instructner.serving.server import ServerConfig, TritonServer, free_port

pytestmark = pytest.mark.integration

MODEL = "instruction_ner"
TEXT = "Angela Merkel visited Paris ."
LABELS = ["person", "location"]
TIMEOUT = 60.0  # generous: the machine is shared; deadlines are tested with tiny timeouts
API_KEY_HEADER = "triton-grpc-protocol-x-api-key"  # what --grpc-restricted-protocol checks


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filled model repository around a tiny random-init T5 (no checkpoint given)."""
    out = tmp_path_factory.mktemp("client-build")
    settings = BuildSettings(
        model_dir=out / "no-checkpoint",
        out_dir=out,
        untrained_size="tiny",
        max_batch_size=8,
        bls_instances=1,
        inter_threads=1,
    )
    return build_repository(settings).repository


@contextlib.contextmanager
def serving(
    repository: Path,
    workdir: Path,
    extra_args: Sequence[str] = (),
    tls: TLSConfig | None = None,
) -> Iterator[TritonServer]:
    """Run tritonserver on free loopback ports, with extra command-line flags (TLS, auth).

    ``tls``: the server speaks TLS; readiness is then polled over TLS by the client itself
    (the launcher's probe speaks plaintext).
    """
    config = ServerConfig(
        repository=repository,
        workdir=workdir,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
    )
    server = TritonServer(config)
    original = server_module.server_command
    with pytest.MonkeyPatch.context() as patch:
        # The launcher has no hook for extra flags; append them to its command line.
        patch.setattr(
            server_module, "server_command", lambda *args: original(*args) + list(extra_args)
        )
        server.start()
    try:
        if tls is None:
            server.wait_ready(120.0, [MODEL])
        else:
            wait_until_ready_over_tls(server, tls)
        yield server
    finally:
        log = server.log_tail(3000)
        server.stop()
        sys.stderr.write(f"--- tail of {server.log_path} ---\n{log}\n")


def wait_until_ready_over_tls(server: TritonServer, tls: TLSConfig, timeout_s: float = 120.0):
    url = f"localhost:{server.config.grpc_port}"
    deadline = time.monotonic() + timeout_s
    with InstructNERClient(url, tls=tls, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if client.is_ready():  # False while the port is still closed
                return
            if server.process is None or server.process.poll() is not None:
                break
            time.sleep(0.25)
    raise AssertionError(f"the TLS server at {url} never became ready:\n{server.log_tail()}")


@pytest.fixture(scope="module")
def url(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gRPC ``host:port`` of a plain server."""
    with serving(repository, tmp_path_factory.mktemp("plain-server")) as server:
        yield server.config.grpc_url


@pytest.fixture
def client(url: str) -> Iterator[InstructNERClient]:
    with InstructNERClient(url, timeout=TIMEOUT) as client:
        yield client


def assert_covers_text(extraction: Extraction, task: str, text: str) -> None:
    """The result is for this text: its windows span exactly the text that was sent."""
    assert extraction.task == task
    assert extraction.text == text
    assert extraction.windows, "every result has at least one window"
    assert extraction.windows[0].start == 0
    assert extraction.windows[-1].end == len(text)
    for entity in extraction.entities:
        assert text[entity.start : entity.end] == entity.text


# Calls.


def test_model_is_ready(client: InstructNERClient):
    assert client.is_ready() is True


def test_ner_returns_entities_of_the_labels_sent(client: InstructNERClient):
    entities = client.ner(TEXT, labels=LABELS)
    assert isinstance(entities, list)
    assert all(isinstance(e, Entity) and e.label in LABELS for e in entities)
    assert_covers_text(client.analyze("ner", TEXT, labels=LABELS), "ner", TEXT)


def test_extract_returns_untyped_spans(client: InstructNERClient):
    entities = client.extract(TEXT)
    assert all(e.label is None for e in entities)
    assert_covers_text(client.analyze("extract", TEXT), "extract", TEXT)


def test_type_returns_entities_typed_with_the_labels_sent(client: InstructNERClient):
    entities = client.type(TEXT, entities=["Angela Merkel", "Paris"], labels=LABELS)
    assert all(e.label in LABELS for e in entities)
    extraction = client.analyze("type", TEXT, labels=LABELS, entities=["Paris"])
    assert_covers_text(extraction, "type", TEXT)


def test_non_ascii_text_round_trips_with_character_offsets(client: InstructNERClient):
    text = "Zoë Müller flog nach Zürich ."
    assert_covers_text(client.analyze("ner", text, labels=LABELS), "ner", text)


def test_batch_results_keep_input_order(client: InstructNERClient):
    # Distinct lengths: a result in the wrong slot would cover the wrong text.
    texts = [f"{'word ' * n}end ." for n in range(1, 13)]
    results = client.analyze_batch("ner", texts, labels=LABELS, max_concurrency=4)
    for text, extraction in zip(texts, results, strict=True):
        assert_covers_text(extraction, "ner", text)
    entity_lists = client.ner_batch(texts, labels=LABELS, max_concurrency=4)
    assert len(entity_lists) == len(texts)
    assert all(isinstance(entities, list) for entities in entity_lists)


def test_metadata_and_keepalive_options_are_accepted_by_the_server(url: str):
    options = {"metadata": {"x-request-source": "tests"}, "keepalive": Keepalive(time_ms=60_000)}
    with InstructNERClient(url, timeout=TIMEOUT, **options) as client:
        assert client.is_ready()
        assert_covers_text(client.analyze("extract", TEXT), "extract", TEXT)


def test_max_message_size_applies_to_requests(url: str):
    with InstructNERClient(url, timeout=TIMEOUT, max_message_bytes=64) as client:
        with pytest.raises(InstructNERError) as caught:
            client.extract(TEXT + " and more words" * 10)
    assert caught.value.code == "RESOURCE_EXHAUSTED"


def test_async_client_runs_every_call(url: str):
    texts = [f"{'word ' * n}end ." for n in range(1, 9)]

    async def scenario():
        async with AsyncInstructNERClient(url, timeout=TIMEOUT) as client:
            ready = await client.is_ready()
            ner, spans, typed = await asyncio.gather(
                client.ner(TEXT, labels=LABELS),
                client.extract(TEXT),
                client.type(TEXT, entities=["Paris"], labels=LABELS),
            )
            batch = await client.analyze_batch("extract", texts, max_concurrency=4)
            lists = await client.ner_batch(texts, labels=LABELS)
            return ready, ner, spans, typed, batch, lists

    ready, ner, spans, typed, batch, lists = asyncio.run(scenario())
    assert ready is True
    assert all(e.label in LABELS for e in ner + typed)
    assert all(e.label is None for e in spans)
    for text, extraction in zip(texts, batch, strict=True):
        assert_covers_text(extraction, "extract", text)
    assert len(lists) == len(texts)


# Errors.


def test_server_down_raises_server_unavailable_after_the_retries():
    down = f"127.0.0.1:{free_port()}"
    retry = RetryPolicy(max_attempts=2, initial_backoff=0.05)
    with InstructNERClient(down, timeout=TIMEOUT, retry=retry) as client:
        with pytest.raises(
            ServerUnavailableError, match=r"\(gave up after 2 attempts\)$"
        ) as caught:
            client.ner(TEXT, labels=LABELS)
        assert client.is_ready() is False
    assert caught.value.code == "UNAVAILABLE"
    assert f"model 'instruction_ner' at {down} is unavailable" in str(caught.value)


def test_async_server_down_raises_server_unavailable():
    async def scenario():
        async with AsyncInstructNERClient(f"127.0.0.1:{free_port()}", timeout=TIMEOUT) as client:
            assert await client.is_ready() is False
            await client.extract(TEXT)

    with pytest.raises(ServerUnavailableError, match="gave up after 3 attempts"):
        asyncio.run(scenario())


def test_tiny_timeout_raises_deadline_exceeded(client: InstructNERClient):
    with pytest.raises(DeadlineExceededError, match="did not answer within the timeout"):
        client.ner(TEXT, labels=LABELS, timeout=0.001)


def test_async_tiny_timeout_raises_deadline_exceeded(url: str):
    async def scenario():
        async with AsyncInstructNERClient(url, timeout=TIMEOUT) as client:
            await client.ner(TEXT, labels=LABELS, timeout=0.001)

    with pytest.raises(DeadlineExceededError):
        asyncio.run(scenario())


def test_bad_arguments_are_rejected_by_the_client_before_sending(client: InstructNERClient):
    with pytest.raises(InvalidInputError, match="labels must not be empty") as caught:
        client.ner(TEXT, labels=[])
    assert caught.value.code is None


def test_input_the_server_rejects_raises_invalid_input_with_its_message(
    client: InstructNERClient,
):
    # "Par" occurs in the text, so the client sends it; the server wants whole words.
    with pytest.raises(InvalidInputError) as caught:
        client.type(TEXT, entities=["Par"], labels=LABELS)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert "ENTITIES[0] 'Par' does not occur in TEXT as a whole word sequence" in str(caught.value)


def test_server_limit_violation_raises_invalid_input(client: InstructNERClient):
    with pytest.raises(InvalidInputError, match="TEXT: is 30000 characters long, over the limit"):
        client.extract("xy " * 10_000)


def test_unknown_model_raises_model_not_ready(url: str):
    with InstructNERClient(url, model_name="no_such_model", timeout=TIMEOUT) as client:
        assert client.is_ready() is False
        with pytest.raises(ModelNotReadyError, match="Request for unknown model"):
            client.extract(TEXT)


def test_unknown_model_version_raises_model_not_ready(url: str):
    with InstructNERClient(url, model_version=42, timeout=TIMEOUT) as client:
        assert client.is_ready() is False
        with pytest.raises(ModelNotReadyError, match="version 42 is not found"):
            client.extract(TEXT)


def test_batch_with_return_exceptions_keeps_good_results_next_to_server_errors(
    client: InstructNERClient,
):
    texts = [TEXT, TEXT, "Parisian food ."]
    entities = [["Paris"], ["Par"], ["Parisian"]]
    results = client.type_batch(texts, entities, LABELS, return_exceptions=True)
    assert isinstance(results[0], list)
    assert isinstance(results[1], InvalidInputError)
    assert "ENTITIES[0] 'Par'" in str(results[1])
    assert isinstance(results[2], list)


# The command line.


def run_cli(args: Sequence[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "instructner_client._cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_ner_prints_json(url: str):
    result = run_cli(["ner", TEXT, "--labels", ",".join(LABELS), "--url", url, "--json"])
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["text"] == TEXT
    assert all(e["label"] in LABELS for e in record["entities"])


def test_cli_table_output(url: str):
    result = run_cli(["extract", TEXT, "--url", url])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == TEXT


def test_cli_stdin_batch_keeps_line_order(url: str):
    lines = [f"{'word ' * n}end ." for n in range(1, 7)]
    result = run_cli(["--url", url, "extract", "--json"], stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["line"], r["text"]) for r in records] == list(enumerate(lines, start=1))


def test_cli_type_with_entities(url: str):
    result = run_cli(
        ["type", TEXT, "--entities", "Angela Merkel", "Paris", "--labels", "person,location"]
        + ["--url", url, "--json"]
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == TEXT


def test_cli_exits_2_when_the_server_rejects_the_input(url: str):
    result = run_cli(["type", TEXT, "--entities", "Par", "--labels", "person", "--url", url])
    assert result.returncode == 2
    assert "ENTITIES[0] 'Par' does not occur in TEXT" in result.stderr


def test_cli_exits_1_when_the_server_is_down():
    result = run_cli(["extract", TEXT, "--url", f"127.0.0.1:{free_port()}", "--timeout", "5"])
    assert result.returncode == 1
    assert "ServerUnavailableError" in result.stderr


# TLS, mutual TLS and a header-restricted server.


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA, a server certificate for localhost/127.0.0.1 and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    folder = tmp_path_factory.mktemp("certs")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=folder,
    )
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "san.ext"]), ("client", [])):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=folder,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            f"{name}.pem",
            *extra,
            cwd=folder,
        )
    return folder


@pytest.fixture(scope="module")
def tls_url(
    repository: Path, certificates: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A TLS server whose inference protocol also requires an API-key header."""
    flags = [
        "--grpc-use-ssl=true",
        f"--grpc-server-cert={certificates / 'server.pem'}",
        f"--grpc-server-key={certificates / 'server.key'}",
        "--grpc-restricted-protocol=inference:x-api-key=s3cret",
    ]
    tls = TLSConfig(root_certificates=certificates / "ca.pem")
    with serving(repository, tmp_path_factory.mktemp("tls-server"), flags, tls) as server:
        yield f"localhost:{server.config.grpc_port}"


def test_tls_round_trip_with_a_self_signed_ca(tls_url: str, certificates: Path):
    tls = TLSConfig(root_certificates=certificates / "ca.pem")
    with InstructNERClient(tls_url, tls=tls, metadata={API_KEY_HEADER: "s3cret"}) as client:
        assert_covers_text(client.analyze("ner", TEXT, labels=LABELS), "ner", TEXT)


def test_tls_root_certificate_can_be_given_as_pem_bytes(tls_url: str, certificates: Path):
    tls = TLSConfig(root_certificates=(certificates / "ca.pem").read_bytes())
    with InstructNERClient(tls_url, tls=tls, metadata={API_KEY_HEADER: "s3cret"}) as client:
        assert_covers_text(client.analyze("extract", TEXT), "extract", TEXT)


def test_missing_api_key_header_is_a_refusal_not_unavailability(tls_url: str, certificates: Path):
    tls = TLSConfig(root_certificates=certificates / "ca.pem")
    with InstructNERClient(tls_url, tls=tls, timeout=TIMEOUT) as client:
        with pytest.raises(InstructNERError, match="refused the call") as caught:
            client.extract(TEXT)
    assert type(caught.value) is InstructNERError
    assert "expecting header 'triton-grpc-protocol-x-api-key'" in str(caught.value)


def test_plaintext_client_cannot_talk_to_the_tls_server(tls_url: str):
    retry = RetryPolicy(max_attempts=1)
    with InstructNERClient(tls_url, timeout=TIMEOUT, retry=retry) as client:
        with pytest.raises(ServerUnavailableError):
            client.extract(TEXT)


def test_tls_client_rejects_a_server_certificate_from_another_ca(tls_url: str, certificates: Path):
    # The client certificate is no CA: nothing the server presents chains up to it.
    tls = TLSConfig(root_certificates=certificates / "client.pem")
    with InstructNERClient(tls_url, tls=tls, timeout=TIMEOUT, retry=RetryPolicy(1)) as client:
        with pytest.raises(ServerUnavailableError):
            client.extract(TEXT)


def test_cli_over_tls_with_a_header(tls_url: str, certificates: Path):
    result = run_cli(
        ["extract", TEXT, "--url", tls_url, "--root-cert", str(certificates / "ca.pem")]
        + ["--header", f"{API_KEY_HEADER}=s3cret", "--json"]
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == TEXT


@pytest.fixture(scope="module")
def mtls_url(
    repository: Path, certificates: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server that requires a client certificate signed by the test CA."""
    flags = [
        "--grpc-use-ssl-mutual=true",
        f"--grpc-server-cert={certificates / 'server.pem'}",
        f"--grpc-server-key={certificates / 'server.key'}",
        f"--grpc-root-cert={certificates / 'ca.pem'}",
    ]
    tls = TLSConfig(
        root_certificates=certificates / "ca.pem",
        client_certificate=certificates / "client.pem",
        client_key=certificates / "client.key",
    )
    with serving(repository, tmp_path_factory.mktemp("mtls-server"), flags, tls) as server:
        yield f"localhost:{server.config.grpc_port}"


def test_mutual_tls_round_trip_with_a_client_certificate(mtls_url: str, certificates: Path):
    tls = TLSConfig(
        root_certificates=certificates / "ca.pem",
        client_certificate=certificates / "client.pem",
        client_key=certificates / "client.key",
    )
    with InstructNERClient(mtls_url, tls=tls, timeout=TIMEOUT) as client:
        assert_covers_text(client.analyze("ner", TEXT, labels=LABELS), "ner", TEXT)


def test_mutual_tls_server_refuses_a_client_without_certificate(mtls_url: str, certificates: Path):
    tls = TLSConfig(root_certificates=certificates / "ca.pem")
    with InstructNERClient(mtls_url, tls=tls, timeout=TIMEOUT, retry=RetryPolicy(1)) as client:
        with pytest.raises(ServerUnavailableError):
            client.extract(TEXT)
