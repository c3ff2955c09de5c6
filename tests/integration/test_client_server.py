"""The client library, its CLI and examples against a real tritonserver.

The server is the session's ``triton_server`` (conftest.py): a tiny T5 trained to give fixed
answers (``tests.harness.FIXED_ANSWERS``: EU is an organization, Brussels is a
location), so entities and offsets have exact expected values. Servers with TLS, mutual TLS
and a header-restricted inference protocol are started here on the same model repository.
"""

import asyncio
import contextlib
import json
import os
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
    InstructNERClient,
    InstructNERError,
    InvalidInputError,
    Keepalive,
    ModelNotReadyError,
    RetryPolicy,
    ServerUnavailableError,
    TLSConfig,
)

from instructner.deploy.build import BuildResult
from instructner.deploy.server import ServerConfig, TritonServer
from tests.certificates import make_certificates
from tests.harness import ANY_SCORE as SCORE
from tests.harness import FIXTURE_LABELS, TEST_LIMITS, free_port

pytestmark = pytest.mark.integration

MODEL = "instruction_ner"
LABELS = list(FIXTURE_LABELS)
TEXT = "EU officials met in Brussels on Monday ."
TIMEOUT = 60.0  # generous: the machine is shared; deadlines are tested with tiny timeouts
API_KEY_HEADER = "triton-grpc-protocol-x-api-key"  # what --grpc-restricted-protocol checks
REPO = Path(__file__).resolve().parents[2]


def expected(text: str, task: str) -> list[Entity]:
    """What the fixed-answer model's answer parses to in ``text``."""
    found = [("EU", "organization"), ("Brussels", "location")]
    if task == "type":
        found = [("Brussels", "location")]
    entities = []
    for word, label in found:
        if word in text:
            start = text.index(word)
            entities.append(
                Entity(word, None if task == "extract" else label, start, start + len(word), SCORE)
            )
    return entities


@pytest.fixture(scope="module")
def url(triton_server: TritonServer) -> str:
    return triton_server.config.grpc_url


@pytest.fixture
def ner_client(url: str) -> Iterator[InstructNERClient]:
    with InstructNERClient(url, timeout=TIMEOUT) as client:
        yield client


# Calls.


def test_model_is_ready(ner_client: InstructNERClient):
    assert ner_client.is_ready() is True


def test_ner_finds_the_entities_with_their_labels_and_offsets(ner_client: InstructNERClient):
    assert ner_client.ner(TEXT, labels=LABELS) == [
        Entity("EU", "organization", 0, 2, SCORE),
        Entity("Brussels", "location", 20, 28, SCORE),
    ]


def test_extract_finds_untyped_spans(ner_client: InstructNERClient):
    assert ner_client.extract(TEXT) == [
        Entity("EU", None, 0, 2, SCORE),
        Entity("Brussels", None, 20, 28, SCORE),
    ]


def test_type_types_the_given_entity(ner_client: InstructNERClient):
    entities = ner_client.type(TEXT, entities=["Brussels"], labels=LABELS)
    assert entities == [Entity("Brussels", "location", 20, 28, SCORE)]


def test_analyze_returns_generated_text_and_windows(ner_client: InstructNERClient):
    extraction = ner_client.analyze("ner", TEXT, labels=LABELS)
    assert extraction.task == "ner"
    assert extraction.generated_text == "EU is an organization, Brussels is a location."
    assert (extraction.windows[0].start, extraction.windows[-1].end) == (0, len(TEXT))
    assert extraction.output_limit_reached is False


def test_offsets_count_characters_of_non_ascii_text(ner_client: InstructNERClient):
    text = "Zoë : EU officials met in Brussels ."
    assert ner_client.ner(text, labels=LABELS) == expected(text, "ner")
    assert ner_client.ner(text, labels=LABELS)[0].start == 6


def test_text_without_the_entities_gives_none(ner_client: InstructNERClient):
    assert ner_client.ner("Nothing here mentions any of them .", labels=LABELS) == []


def test_ner_batch_keeps_input_order(ner_client: InstructNERClient):
    # Each text has its entities at other offsets: a result in the wrong slot would not match.
    texts = [f"{'Monday ' * n}EU officials met in Brussels ." for n in range(12)]
    results = ner_client.ner_batch(texts, labels=LABELS, max_concurrency=4)
    assert results == [expected(text, "ner") for text in texts]


def test_extract_and_type_batches_keep_input_order(ner_client: InstructNERClient):
    texts = [f"{'Monday ' * n}EU officials met in Brussels ." for n in range(6)]
    assert ner_client.extract_batch(texts) == [expected(text, "extract") for text in texts]
    typed = ner_client.type_batch(texts, [["Brussels"]] * len(texts), LABELS)
    assert typed == [expected(text, "type") for text in texts]


def test_metadata_and_keepalive_options_are_accepted_by_the_server(url: str):
    options = {"metadata": {"x-request-source": "tests"}, "keepalive": Keepalive(time_ms=60_000)}
    with InstructNERClient(url, timeout=TIMEOUT, **options) as client:
        assert client.is_ready()
        assert client.extract(TEXT) == expected(TEXT, "extract")


def test_max_message_size_applies_to_requests(url: str):
    with InstructNERClient(url, timeout=TIMEOUT, max_message_bytes=64) as client:
        with pytest.raises(InstructNERError) as caught:
            client.extract(TEXT + " and more words" * 10)
    assert caught.value.code == "RESOURCE_EXHAUSTED"


def test_async_client_runs_every_call(url: str):
    texts = [f"{'Monday ' * n}EU officials met in Brussels ." for n in range(8)]

    async def scenario():
        async with AsyncInstructNERClient(url, timeout=TIMEOUT) as client:
            ready = await client.is_ready()
            calls = await asyncio.gather(
                client.ner(TEXT, labels=LABELS),
                client.extract(TEXT),
                client.type(TEXT, entities=["Brussels"], labels=LABELS),
            )
            batch = await client.ner_batch(texts, labels=LABELS, max_concurrency=4)
            return ready, calls, batch

    ready, (ner, spans, typed), batch = asyncio.run(scenario())
    assert ready is True
    assert ner == expected(TEXT, "ner")
    assert spans == expected(TEXT, "extract")
    assert typed == expected(TEXT, "type")
    assert batch == [expected(text, "ner") for text in texts]


# Errors.


def test_the_http_port_gets_a_hint_to_use_the_grpc_port(triton_server: TritonServer):
    http = f"127.0.0.1:{triton_server.config.http_port}"
    retry = RetryPolicy(max_attempts=1)
    with InstructNERClient(http, timeout=TIMEOUT, retry=retry) as client:
        with pytest.raises(ServerUnavailableError, match="is this Triton's HTTP port"):
            client.ner(TEXT, labels=LABELS)


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


def test_tiny_timeout_raises_deadline_exceeded(ner_client: InstructNERClient):
    with pytest.raises(DeadlineExceededError, match="did not answer within the timeout"):
        ner_client.ner(TEXT, labels=LABELS, timeout=0.001)


def test_async_tiny_timeout_raises_deadline_exceeded(url: str):
    async def scenario():
        async with AsyncInstructNERClient(url, timeout=TIMEOUT) as client:
            await client.ner(TEXT, labels=LABELS, timeout=0.001)

    with pytest.raises(DeadlineExceededError):
        asyncio.run(scenario())


def test_bad_arguments_are_rejected_by_the_client_before_sending(ner_client: InstructNERClient):
    with pytest.raises(InvalidInputError, match="labels must not be empty") as caught:
        ner_client.ner(TEXT, labels=[])
    assert caught.value.code is None


def test_input_the_server_rejects_raises_invalid_input_with_its_message(
    ner_client: InstructNERClient,
):
    # "Bru" occurs in the text, so the client sends it; the server wants whole words.
    with pytest.raises(InvalidInputError) as caught:
        ner_client.type(TEXT, entities=["Bru"], labels=LABELS)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert "ENTITIES[0] 'Bru' does not occur in TEXT as a whole word sequence" in str(caught.value)


def test_server_limit_violation_raises_invalid_input(ner_client: InstructNERClient):
    size = TEST_LIMITS.max_text_chars + 1
    with pytest.raises(InvalidInputError, match=f"TEXT: is {size} characters long, over the limit"):
        ner_client.extract("x" * size)


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
    ner_client: InstructNERClient,
):
    texts = [TEXT, TEXT, TEXT]
    entities = [["Brussels"], ["Bru"], ["Brussels"]]
    results = ner_client.type_batch(texts, entities, LABELS, return_exceptions=True)
    assert results[0] == results[2] == expected(TEXT, "type")
    assert isinstance(results[1], InvalidInputError)
    assert "ENTITIES[0] 'Bru'" in str(results[1])


# The command line.


def run_cli(
    args: Sequence[str], stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "instructner_client._cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=None if env is None else {**os.environ, **env},
    )


def test_cli_ner_prints_json(url: str):
    result = run_cli(["ner", TEXT, "--labels", ",".join(LABELS), "--url", url, "--json"])
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["text"] == TEXT
    assert record["entities"] == [e.to_dict() for e in expected(TEXT, "ner")]


def test_cli_prints_a_table(url: str):
    result = run_cli(["ner", TEXT, "--labels", ",".join(LABELS), "--url", url])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [TEXT, "  TEXT      LABEL         START  END  SCORE"]
    rows = [line.split() for line in lines[2:]]
    assert [row[:4] for row in rows] == [
        ["EU", "organization", "0", "2"],
        ["Brussels", "location", "20", "28"],
    ]
    assert all(0.0 <= float(row[4]) <= 1.0 and len(row[4]) == 5 for row in rows)  # 0.xxx


def test_cli_stdin_batch_keeps_line_order(url: str):
    lines = [f"{'Monday ' * n}EU officials met in Brussels ." for n in range(6)]
    result = run_cli(["--url", url, "extract", "--json"], stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["line"], r["text"]) for r in records] == list(enumerate(lines, start=1))
    assert [r["entities"] for r in records] == [
        [e.to_dict() for e in expected(line, "extract")] for line in lines
    ]


def test_cli_type_with_entities(url: str):
    result = run_cli(
        ["type", TEXT, "--entities", "Brussels", "--labels", ",".join(LABELS), "--url", url]
        + ["--json"]
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["entities"] == [
        {"text": "Brussels", "label": "location", "start": 20, "end": 28, "score": SCORE}
    ]


def test_cli_exits_2_when_the_server_rejects_the_input(url: str):
    result = run_cli(["type", TEXT, "--entities", "Bru", "--labels", "location", "--url", url])
    assert result.returncode == 2
    assert "ENTITIES[0] 'Bru' does not occur in TEXT" in result.stderr


def test_cli_exits_1_when_the_server_is_down():
    result = run_cli(["extract", TEXT, "--url", f"127.0.0.1:{free_port()}", "--timeout", "5"])
    assert result.returncode == 1
    assert "ServerUnavailableError" in result.stderr


# The examples shipped with the client.


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = REPO / "client" / "examples" / name
    return subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True, timeout=300
    )


def test_sync_example_runs(url: str):
    result = run_example("sync_ner.py", "--url", url)
    assert result.returncode == 0, result.stderr


def test_async_example_prints_each_task(url: str):
    result = run_example("async_ner.py", "--url", url)
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["ner", "extract", "type"]


def test_batch_example_writes_one_json_line_per_text(url: str, tmp_path: Path):
    source = tmp_path / "texts.txt"
    source.write_text(f"{TEXT}\n\nNothing here mentions any of them .\n")
    target = tmp_path / "entities.jsonl"
    result = run_example(
        "batch_file.py", str(source), str(target), "--labels", "organization,location", "--url", url
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r["line"], r["entities"]) for r in records] == [
        (1, [e.to_dict() for e in expected(TEXT, "ner")]),
        (3, []),
    ]


# TLS, mutual TLS and a header-restricted server, on the session's model repository.


@contextlib.contextmanager
def serving(
    repository: Path, workdir: Path, extra_args: Sequence[str], tls: TLSConfig
) -> Iterator[TritonServer]:
    """Run tritonserver with extra command-line flags; poll its readiness over TLS."""
    config = ServerConfig.on_free_ports(
        repository=repository,
        workdir=workdir,
        extra_args=tuple(extra_args),
    )
    server = TritonServer(config)
    server.start()
    try:
        wait_until_ready_over_tls(server, tls)
        yield server
    finally:
        server.stop()


def wait_until_ready_over_tls(server: TritonServer, tls: TLSConfig, timeout_s: float = 240.0):
    """Poll like the launcher's wait_ready, which speaks plaintext only."""
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
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA, a server certificate for localhost/127.0.0.1 and a client certificate."""
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_url(
    fixture_build: BuildResult, certificates: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A TLS server whose inference protocol also requires an API-key header."""
    flags = [
        "--grpc-use-ssl=true",
        f"--grpc-server-cert={certificates / 'server.pem'}",
        f"--grpc-server-key={certificates / 'server.key'}",
        "--grpc-restricted-protocol=inference:x-api-key=s3cret",
    ]
    tls = TLSConfig(root_certificates=certificates / "ca.pem")
    workdir = tmp_path_factory.mktemp("tls-server")
    with serving(fixture_build.repository, workdir, flags, tls) as server:
        yield f"localhost:{server.config.grpc_port}"


def test_tls_round_trip_with_a_self_signed_ca(tls_url: str, certificates: Path):
    tls = TLSConfig(root_certificates=certificates / "ca.pem")
    with InstructNERClient(tls_url, tls=tls, metadata={API_KEY_HEADER: "s3cret"}) as client:
        assert client.ner(TEXT, labels=LABELS) == expected(TEXT, "ner")


def test_tls_root_certificate_can_be_given_as_pem_bytes(tls_url: str, certificates: Path):
    tls = TLSConfig(root_certificates=(certificates / "ca.pem").read_bytes())
    with InstructNERClient(tls_url, tls=tls, metadata={API_KEY_HEADER: "s3cret"}) as client:
        assert client.extract(TEXT) == expected(TEXT, "extract")


def test_async_client_over_tls(tls_url: str, certificates: Path):
    async def scenario():
        tls = TLSConfig(root_certificates=certificates / "ca.pem")
        metadata = {API_KEY_HEADER: "s3cret"}
        async with AsyncInstructNERClient(tls_url, tls=tls, metadata=metadata) as client:
            return await client.ner(TEXT, labels=LABELS)

    assert asyncio.run(scenario()) == expected(TEXT, "ner")


def test_missing_api_key_header_is_a_refusal_not_unavailability(tls_url: str, certificates: Path):
    tls = TLSConfig(root_certificates=certificates / "ca.pem")
    with InstructNERClient(tls_url, tls=tls, timeout=TIMEOUT) as client:
        with pytest.raises(InstructNERError, match="refused the call") as caught:
            client.extract(TEXT)
    assert type(caught.value) is InstructNERError
    assert "expecting header 'triton-grpc-protocol-x-api-key'" in str(caught.value)


def test_plaintext_client_cannot_talk_to_the_tls_server(tls_url: str):
    with InstructNERClient(tls_url, timeout=TIMEOUT, retry=RetryPolicy(1)) as client:
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
    assert json.loads(result.stdout)["entities"] == [e.to_dict() for e in expected(TEXT, "extract")]


@pytest.fixture(scope="module")
def mtls_url(
    fixture_build: BuildResult, certificates: Path, tmp_path_factory: pytest.TempPathFactory
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
    workdir = tmp_path_factory.mktemp("mtls-server")
    with serving(fixture_build.repository, workdir, flags, tls) as server:
        yield f"localhost:{server.config.grpc_port}"


def test_mutual_tls_round_trip_with_a_client_certificate(mtls_url: str, certificates: Path):
    tls = TLSConfig(
        root_certificates=certificates / "ca.pem",
        client_certificate=certificates / "client.pem",
        client_key=certificates / "client.key",
    )
    with InstructNERClient(mtls_url, tls=tls, timeout=TIMEOUT) as client:
        assert client.ner(TEXT, labels=LABELS) == expected(TEXT, "ner")


def test_mutual_tls_server_refuses_a_client_without_certificate(mtls_url: str, certificates: Path):
    tls = TLSConfig(root_certificates=certificates / "ca.pem")
    with InstructNERClient(mtls_url, tls=tls, timeout=TIMEOUT, retry=RetryPolicy(1)) as client:
        with pytest.raises(ServerUnavailableError):
            client.extract(TEXT)


def test_readme_library_example_runs_as_written(url: str):
    readme = (REPO / "client" / "README.md").read_text()
    section = readme.split("## Library", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'InstructNERClient("localhost:8001"' in code
    code = code.replace("localhost:8001", url)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


def test_a_document_over_the_part_size_is_split_and_merged_with_document_offsets(url: str):
    paragraphs = [f"Paragraph {i} : EU officials met in Brussels on Monday ." for i in range(6)]
    document = "\n\n".join(paragraphs)
    with InstructNERClient(url, timeout=TIMEOUT) as client:
        entities = client.ner_document(document, labels=LABELS, max_chars=120)
        extraction = client.analyze_document("extract", document, max_chars=120)

    async def run_async() -> list[Entity]:
        async with AsyncInstructNERClient(url, timeout=TIMEOUT) as client:
            return await client.ner_document(document, labels=LABELS, max_chars=120)

    assert [(e.text, e.label) for e in entities] == [
        ("EU", "organization"),
        ("Brussels", "location"),
    ] * 6
    assert all(document[e.start : e.end] == e.text for e in entities)
    assert len(extraction.entities) == 12 and len(extraction.windows) >= 6
    assert all(document[w.start : w.end].strip() for w in extraction.windows)
    spans = [(e.text, e.label, e.start, e.end) for e in entities]
    assert [(e.text, e.label, e.start, e.end) for e in asyncio.run(run_async())] == spans


def test_cli_file_sends_a_200000_character_document_as_ner_document_does(url: str, tmp_path):
    paragraph = "EU officials met in Brussels on Monday .\nThe talks went on .\n\n"
    document = paragraph * (200_000 // len(paragraph) + 1)
    assert len(document) > 200_000
    path = tmp_path / "big.txt"
    path.write_text(document, encoding="utf-8")
    limit = ["--max-chars", "5000"]  # the test server's TEXT limit (TEST_LIMITS)
    result = run_cli(
        ["ner", "--file", str(path), "--labels", ",".join(LABELS), "--url", url, "--json", *limit]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(result.stdout)
    assert (record["file"], record["characters"]) == (str(path), len(document))
    with InstructNERClient(url, timeout=TIMEOUT) as client:
        library = client.ner_document(document, LABELS, max_chars=5000)
    assert record["entities"] == [e.to_dict() for e in library]
    assert len(library) == 2 * document.count(paragraph)
    assert all(document[e["start"] : e["end"]] == e["text"] for e in record["entities"])


def test_cli_file_dash_reads_all_of_stdin_as_one_document_with_its_line_breaks(url: str):
    document = "EU officials met\nin Brussels on Monday .\n\nNothing here .\n"
    result = run_cli(
        ["extract", "--file", "-", "--url", url, "--json", "--no-progress"], stdin=document
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["file"] == "-" and record["characters"] == len(document)
    assert all(document[e["start"] : e["end"]] == e["text"] for e in record["entities"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ner", "EU .", "--file", "x.txt", "--labels", "person"], "give TEXT or --file, not both"),
        (["ner", "--file", "/nonexistent/big.txt", "--labels", "person"], "--file /nonexistent"),
        (["type", "--file", "/dev/null", "--labels", "person"], "type needs --entities"),
    ],
)
def test_cli_file_usage_errors_exit_2_with_the_reason(url: str, args, message):
    result = run_cli([*args, "--url", url])
    assert result.returncode == 2
    assert message in result.stderr


def test_cli_keeps_grpc_core_logs_quiet_unless_the_caller_asks(url: str):
    # TLS against the plaintext port: gRPC's C core logs the failed handshake on stderr
    args = ["ner", TEXT, "--labels", "person", "--url", url, "--tls", "--timeout", "3"]
    quiet = run_cli(args)
    assert quiet.returncode == 1
    lines = [line for line in quiet.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("instructner-client: ") for line in lines), lines
    asked = run_cli(args, env={"GRPC_VERBOSITY": "INFO"})
    assert asked.returncode == 1
    assert any(not line.startswith("instructner-client") for line in asked.stderr.splitlines())
