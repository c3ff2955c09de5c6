"""The reference nginx front proxy in front of the session's real server (deploy/nginx).

Short timeouts here (2 s for headers and bodies, 3 s idle) keep the slow-client cases quick;
the shipped defaults are 10 s and 30 s.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from bench.serverstats import process_tree_rss
from instructner.deploy.proxy import NginxProxy, ProxyConfig
from instructner.deploy.server import TritonServer, free_ports
from tests.harness import FIXTURE_LABELS, ner_inputs

pytestmark = pytest.mark.integration

MODEL = "instruction_ner"
TEXT = "EU officials met in Brussels on Monday ."
TIMEOUT_S = 2
IDLE_S = 3


@pytest.fixture(scope="module")
def proxy(
    triton_server: TritonServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NginxProxy]:
    http_port, grpc_port = free_ports(2)
    config = ProxyConfig(
        prefix=tmp_path_factory.mktemp("proxy"),
        upstream_http_port=triton_server.config.http_port,
        upstream_grpc_port=triton_server.config.grpc_port,
        http_port=http_port,
        grpc_port=grpc_port,
        timeout_s=TIMEOUT_S,
        idle_timeout_s=IDLE_S,
    )
    with NginxProxy(config) as running:
        yield running


def _infer_body(text: str = TEXT) -> dict[str, object]:
    # RESULT is a serialized protobuf, not UTF-8 text: JSON carries only GENERATED_TEXT
    return {
        "outputs": [{"name": "GENERATED_TEXT"}],
        "inputs": [
            {"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [text]},
            {
                "name": "LABELS",
                "shape": [1, len(FIXTURE_LABELS)],
                "datatype": "BYTES",
                "data": list(FIXTURE_LABELS),
            },
        ],
    }


def _http(proxy: NginxProxy, method: str, path: str, body: bytes | None = None, **headers: str):
    request = urllib.request.Request(
        f"http://127.0.0.1:{proxy.config.http_port}{path}",
        data=body,
        method=method,
        headers={"Content-Type": "application/json", **headers} if body is not None else headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _grpc(proxy: NginxProxy) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{proxy.config.grpc_port}")


def test_the_public_model_and_health_pass_over_http(proxy: NginxProxy):
    status, body = _http(
        proxy, "POST", f"/v2/models/{MODEL}/infer", json.dumps(_infer_body()).encode()
    )
    assert status == 200
    outputs = {o["name"]: o["data"] for o in json.loads(body)["outputs"]}
    assert outputs["GENERATED_TEXT"] == ["EU is an organization, Brussels is a location."]
    assert _http(proxy, "GET", "/v2/health/ready")[0] == 200
    assert _http(proxy, "GET", f"/v2/models/{MODEL}")[0] == 200


def test_the_public_model_and_health_pass_over_grpc(proxy: NginxProxy):
    with _grpc(proxy) as client:
        assert client.is_server_ready() and client.is_model_ready(MODEL)
        result = client.infer(MODEL, ner_inputs(TEXT, FIXTURE_LABELS), client_timeout=30)
        assert result.as_numpy("GENERATED_TEXT")[0, 0].decode().startswith("EU is an organization")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/models/preprocessing/infer"),
        ("POST", "/v2/models/engine/infer"),
        ("POST", "/v2/models/postprocessing/infer"),
        ("POST", "/v2/repository/index"),
        ("POST", f"/v2/repository/models/{MODEL}/unload"),
        ("POST", "/v2/systemsharedmemory/region/pp/register"),
        ("GET", "/v2/models/stats"),
        ("GET", "/v2/logging"),
        ("GET", "/v2/trace/setting"),
        ("GET", "/v2/models/engine/config"),
        ("GET", "/metrics"),
    ],
)
def test_everything_else_over_http_is_not_found(proxy: NginxProxy, method: str, path: str):
    body = json.dumps(_infer_body()).encode() if method == "POST" else None
    assert _http(proxy, method, path, body)[0] == 404


def test_other_grpc_methods_are_not_forwarded_and_internal_steps_refuse(proxy: NginxProxy):
    with _grpc(proxy) as client:
        for call in (client.get_model_repository_index, client.get_log_settings):
            with pytest.raises(InferenceServerException) as caught:
                call(client_timeout=10)
            assert caught.value.status() == "StatusCode.UNIMPLEMENTED"
        with pytest.raises(InferenceServerException) as caught:
            client.infer("preprocessing", ner_inputs(TEXT, FIXTURE_LABELS), client_timeout=10)
        assert caught.value.status() == "StatusCode.NOT_FOUND"


def test_a_compressed_http_body_is_refused_before_triton_expands_it(
    proxy: NginxProxy, triton_server: TritonServer
):
    assert triton_server.pid is not None
    before = process_tree_rss(triton_server.pid)["total_kib"]
    # 200 MB of one repeated JSON string squeeze into ~200 KB of gzip
    bomb = gzip.compress(b'{"inputs": [{"data": ["' + b"a" * 200_000_000 + b'"]}]}', 9)
    assert len(bomb) < 300_000
    status, _ = _http(
        proxy, "POST", f"/v2/models/{MODEL}/infer", bomb, **{"Content-Encoding": "gzip"}
    )
    assert status == 415
    assert process_tree_rss(triton_server.pid)["total_kib"] - before < 50 * 1024


def test_a_compressed_grpc_message_is_refused(proxy: NginxProxy):
    with _grpc(proxy) as client, pytest.raises(InferenceServerException):
        client.infer(
            MODEL,
            ner_inputs(TEXT, FIXTURE_LABELS),
            compression_algorithm="gzip",
            client_timeout=10,
        )


def test_a_body_over_the_cap_is_refused(proxy: NginxProxy):
    body = json.dumps(_infer_body("word " * 300_000)).encode()
    assert len(body) > proxy.config.max_body_bytes
    assert _http(proxy, "POST", f"/v2/models/{MODEL}/infer", body)[0] == 413


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read until the proxy closes the connection; return (closed in time, what it sent)."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return False, received
    return True, received


def test_half_sent_headers_are_dropped_after_the_header_timeout(proxy: NginxProxy):
    with socket.create_connection(("127.0.0.1", proxy.config.http_port)) as sock:
        sock.sendall(b"POST /v2/models/instruction_ner/infer HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed, _ = _closed_within(sock, TIMEOUT_S + 5)
        assert closed and time.monotonic() - started < TIMEOUT_S + 3


def test_a_half_sent_body_is_answered_408_after_the_body_timeout(proxy: NginxProxy):
    with socket.create_connection(("127.0.0.1", proxy.config.http_port)) as sock:
        sock.sendall(
            b"POST /v2/models/instruction_ner/infer HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"inputs": '
        )
        closed, received = _closed_within(sock, TIMEOUT_S + 5)
        assert closed
        assert received == b"" or received.startswith(b"HTTP/1.1 408")


def test_an_idle_keep_alive_connection_is_closed(proxy: NginxProxy):
    with socket.create_connection(("127.0.0.1", proxy.config.http_port)) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        closed, _ = _closed_within(sock, IDLE_S + 5)
        assert closed and time.monotonic() - started < IDLE_S + 3
