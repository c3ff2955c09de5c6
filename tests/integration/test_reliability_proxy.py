"""The reference nginx front proxy in front of the session's real server (deploy/nginx).

Short timeouts here (2 s for headers and bodies, 3 s idle) keep the slow-client cases quick;
the shipped defaults are 10 s and 30 s.
"""

from __future__ import annotations

import gzip
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
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
        ("POST", "/v2/models/engine/infer"),
        ("POST", "/v2/models/preprocessing/infer"),  # no such model: the front says the same
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
            client.infer("engine", ner_inputs(TEXT, FIXTURE_LABELS), client_timeout=10)
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


# Malformed HTTP inference bodies: Triton 2.51 answers them with 500 (and a deeply nested one
# crashes it); the front checks them (deploy/nginx/infer_request.js) and answers 400.
_TEXT_INPUT = '{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [%s]}'
MALFORMED_BODIES = {
    "truncated": (b"{", "not valid JSON"),
    "trailing garbage": (b'{"inputs": []} trailing', "not valid JSON"),
    "number as BYTES data": (
        ('{"inputs": [%s]}' % (_TEXT_INPUT % "5")).encode(),
        'input \\"TEXT\\": data elements must be strings for datatype BYTES',
    ),
    "lone surrogate": (
        ('{"inputs": [%s]}' % (_TEXT_INPUT % '"a\\ud800b"')).encode(),
        "unpaired UTF-16 surrogate escape",
    ),
    "lone low surrogate after escaped backslashes": (
        ('{"inputs": [%s]}' % (_TEXT_INPUT % '"\\\\\\\\\\udc00"')).encode(),
        "unpaired UTF-16 surrogate escape",
    ),
    "nested 200,000 deep": (b"[" * 200_000 + b"]" * 200_000, "Nested too deep"),
    "not UTF-8": (
        ('{"inputs": [%s]}' % (_TEXT_INPUT % '"caf\xe9"')).encode("latin-1"),
        "not valid UTF-8",
    ),
    "not an object": (b"[1, 2]", "must be a JSON object"),
    "no inputs": (b'{"inputs": []}', "inputs must be a non-empty array"),
    "unknown field": (
        ('{"inputs": [%s], "extra": 1}' % (_TEXT_INPUT % '"a"')).encode(),
        'unknown request field \\"extra\\"',
    ),
    "unknown datatype": (
        b'{"inputs": [{"name": "TEXT", "shape": [1], "datatype": "STRING", "data": ["a"]}]}',
        "unknown datatype",
    ),
    "negative shape": (
        b'{"inputs": [{"name": "TEXT", "shape": [-1], "datatype": "BYTES", "data": ["a"]}]}',
        "shape must be an array of integers >= 0",
    ),
    "object parameter": (
        ('{"inputs": [%s], "parameters": {"p": {}}}' % (_TEXT_INPUT % '"a"')).encode(),
        "must be a string, a number or a boolean",
    ),
    "100,000-character input name": (
        (
            '{"inputs": [{"name": "%s", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}'
            % ("n" * 100_000)
        ).encode(),
        "name is longer than 128 characters",
    ),
    "data not an array": (
        ('{"inputs": [' + _TEXT_INPUT.replace("[%s]", '"a"') + "]}").encode(),
        "data must be an array",
    ),
    "element count against shape": (
        b'{"inputs": [{"name": "MIN_SCORE", "shape": [1, 2], "datatype": "FP32", "data": [0.5]}]}',
        "data holds 1 elements, its shape [1, 2] 2",
    ),
    "infinite number": (
        b'{"inputs": [{"name": "MIN_SCORE", "shape": [1], "datatype": "FP32", "data": [1e999]}]}',
        "data elements must be numbers",
    ),
    "negative unsigned": (
        b'{"inputs": [{"name": "X", "shape": [1], "datatype": "UINT8", "data": [-1]}]}',
        "data elements must be numbers",
    ),
    "typed parameter of the wrong type": (
        ('{"inputs": [%s], "parameters": {"priority": "x"}}' % (_TEXT_INPUT % '"a"')).encode(),
        'parameter \\"priority\\": must be an integer >= 0',
    ),
    "shared memory parameter": (
        (
            '{"inputs": [%s], "parameters": {"shared_memory_region": "r"}}' % (_TEXT_INPUT % '"a"')
        ).encode(),
        "shared memory is not served",
    ),
    "byte-order mark": (
        b"\xef\xbb\xbf" + ('{"inputs": [%s]}' % (_TEXT_INPUT % '"a"')).encode(),
        "not valid JSON",
    ),
    "empty body": (b"", "no body"),
    "repeated key (njs reads the last, Triton the first)": (
        ('{"inputs": 5, "inputs": [%s]}' % (_TEXT_INPUT % '"a"')).encode(),
        'the key \\"inputs\\" appears more than once in an object',
    ),
    "repeated parameter": (
        (
            '{"inputs": [%s], "parameters": {"priority": "x", "priority": 1}}'
            % (_TEXT_INPUT % '"a"')
        ).encode(),
        'the key \\"priority\\" appears more than once in an object',
    ),
    "10,000 inputs": (
        ('{"inputs": [' + ", ".join([_TEXT_INPUT % '"a"'] * 10_000) + "]}").encode(),
        "at most 64 inputs, got 10000",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_BODIES))
def test_a_malformed_http_body_is_answered_400_with_the_reason(proxy: NginxProxy, case: str):
    body, reason = MALFORMED_BODIES[case]
    status, answer = _http(proxy, "POST", f"/v2/models/{MODEL}/infer", body)
    assert status == 400, answer[:300]
    assert reason in answer.decode(), answer[:300]
    assert len(answer) < 1000


@pytest.mark.parametrize(
    ("header", "reason"),
    [("5", "not valid JSON"), ("99999999", "within the body"), ("x", "within the body")],
)
def test_a_wrong_inference_header_length_is_answered_400(
    proxy: NginxProxy, header: str, reason: str
):
    body = json.dumps(_infer_body()).encode()
    status, answer = _http(
        proxy,
        "POST",
        f"/v2/models/{MODEL}/infer",
        body,
        **{"Inference-Header-Content-Length": header},
    )
    assert status == 400 and reason in answer.decode(), answer


def test_a_text_that_quotes_json_keys_passes_the_check(proxy: NginxProxy):
    body = json.dumps(_infer_body('EU "name": "inputs": officials met in Brussels .')).encode()
    status, answer = _http(proxy, "POST", f"/v2/models/{MODEL}/infer", body)
    assert status == 200, answer[:300]


def test_binary_tensor_data_passes_the_check(proxy: NginxProxy):
    import numpy as np
    import tritonclient.http as httpclient

    text = httpclient.InferInput("TEXT", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[TEXT.encode()]], dtype=object), binary_data=True)
    labels = httpclient.InferInput("LABELS", [1, len(FIXTURE_LABELS)], "BYTES")
    labels.set_data_from_numpy(
        np.array([[w.encode() for w in FIXTURE_LABELS]], dtype=object), binary_data=True
    )
    with httpclient.InferenceServerClient(f"127.0.0.1:{proxy.config.http_port}") as client:
        result = client.infer(
            MODEL,
            [text, labels],
            outputs=[httpclient.InferRequestedOutput("GENERATED_TEXT", binary_data=True)],
        )
    assert result.as_numpy("GENERATED_TEXT")[0, 0].decode().startswith("EU is an organization")


def test_the_body_check_is_linear_on_adversarial_bodies(proxy: NginxProxy):
    # ~1 MB of the escapes the surrogate walk visits; a quadratic walk takes minutes here
    for text in ("\\ud83d\\ude00" * 80_000, "\\\\" * 300_000 + "\\ud800", "\\\\u" * 200_000):
        body = ('{"inputs": [%s]}' % (_TEXT_INPUT % f'"{text}"')).encode()
        started = time.monotonic()
        status, _ = _http(proxy, "POST", f"/v2/models/{MODEL}/infer", body)
        assert status == 400
        assert time.monotonic() - started < 10


def _grpc_error(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


def test_grpc_calls_that_triton_would_echo_without_bound_get_a_status(proxy: NginxProxy):
    from tests.harness import bytes_input

    huge = "m" * 100_000
    with _grpc(proxy) as client:
        inputs = ner_inputs(TEXT, FIXTURE_LABELS)
        unknown = [bytes_input(f"unknown_input_{i}", [[b"x"]]) for i in range(10_000)]
        cases = {
            "10,000 unknown inputs": (
                lambda: client.infer(MODEL, inputs + unknown, client_timeout=30),
                "StatusCode.INVALID_ARGUMENT",
                "more than 64 inputs",
            ),
            "100 KB model name": (
                lambda: client.infer(huge, inputs, client_timeout=30),
                "StatusCode.INVALID_ARGUMENT",
                "the model name is 100000 bytes long, over 128",
            ),
            "100 KB input name": (
                lambda: client.infer(
                    MODEL, inputs + [bytes_input(huge, [[b"x"]])], client_timeout=30
                ),
                "StatusCode.INVALID_ARGUMENT",
                "an input name is 100000 bytes long",
            ),
            "100 KB version": (
                lambda: client.get_model_metadata(MODEL, "9" * 100_000, client_timeout=30),
                "StatusCode.INVALID_ARGUMENT",
                "the model version is 100000 bytes long",
            ),
            "metadata of an internal step": (
                lambda: client.get_model_metadata("engine", client_timeout=30),
                "StatusCode.NOT_FOUND",
                'model "engine" is not served here; send requests to instruction_ner',
            ),
        }
        for name, (call, status, reason) in cases.items():
            error = _grpc_error(call)
            assert error.status() == status, (name, error)
            assert reason in (error.message() or ""), (name, error)
        assert client.is_model_ready(MODEL)


def _hold_partial_connections(
    port: int, count: int, stop: threading.Event, opened: list[int], renew_s: float = 9.0
) -> None:
    """From 127.0.0.2, keep ``count`` connections open that never finish their headers."""
    while not stop.is_set():
        sockets = []
        for _ in range(count):
            sock = socket.socket()
            sock.settimeout(2)
            try:
                sock.bind(("127.0.0.2", 0))
                sock.connect(("127.0.0.1", port))
                sock.sendall(b"POST /v2/models/instruction_ner/infer HTTP/1.1\r\nHost: x\r\n")
                sockets.append(sock)
            except OSError:
                sock.close()
        opened.append(len(sockets))
        stop.wait(renew_s)
        for sock in sockets:
            sock.close()


def test_one_address_holding_1100_half_open_connections_does_not_lock_others_out(
    proxy: NginxProxy,
):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard or hard == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    stop = threading.Event()
    opened: list[int] = []
    attackers = [
        threading.Thread(target=_hold_partial_connections, args=(port, 1100, stop, opened))
        for port in (proxy.config.http_port, proxy.config.grpc_port)
    ]
    outcomes = {"http": [0, 0], "grpc": [0, 0]}  # [answered, failed]
    body = json.dumps(_infer_body()).encode()
    deadline = time.monotonic() + 40
    try:
        for attacker in attackers:
            attacker.start()
        time.sleep(2)
        with _grpc(proxy) as client:
            while time.monotonic() < deadline:
                status, _ = _http(proxy, "POST", f"/v2/models/{MODEL}/infer", body)
                outcomes["http"][status != 200] += 1
                try:
                    client.infer(MODEL, ner_inputs(TEXT, FIXTURE_LABELS), client_timeout=10)
                    outcomes["grpc"][0] += 1
                except InferenceServerException:
                    outcomes["grpc"][1] += 1
                time.sleep(0.05)
    finally:
        stop.set()
        for attacker in attackers:
            attacker.join(60)
    for kind, (answered, failed) in outcomes.items():
        assert answered >= 99 * (answered + failed) / 100 and answered > 20, (kind, outcomes)
    # the attacker got no more than its allowance on each port, counted at accept
    assert "limiting connections by zone" in proxy.log_tail(100_000)


_INSERTS = (b'"', b"{", b"]", b"\\u", b"\\ud800", b"\x00", b"\xff", b"1e999")


def _mutated(base: bytes, rng: random.Random) -> bytes:
    data = bytearray(base)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data))
        choice = rng.random()
        if choice < 0.45:
            data[at] = rng.randrange(256)
        elif choice < 0.7:
            del data[at : at + rng.randint(1, 4)]
        else:
            data[at:at] = rng.choice(
                [b'"', b"{", b"]", b"\\u", b"\\ud800", b"\x00", b"\xff", b"1e999"]
            )
    return bytes(data)


def test_mutated_http_bodies_never_get_a_server_error_through_the_front(proxy: NginxProxy):
    rng = random.Random(7)
    base = json.dumps(_infer_body()).encode()
    statuses = Counter()
    for _ in range(150):
        status, answer = _http(proxy, "POST", f"/v2/models/{MODEL}/infer", _mutated(base, rng))
        statuses[status] += 1
        assert status < 500, answer[:300]
    assert statuses[400] > 100, statuses


def test_mutated_grpc_messages_get_a_precise_status_not_a_parse_failure(proxy: NginxProxy):
    import grpc
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name=MODEL, id="x")
    for tensor in ner_inputs(TEXT, FIXTURE_LABELS):
        request.inputs.append(tensor._get_tensor())
        request.raw_input_contents.append(tensor._get_content())
    request.parameters["p"].string_param = "v"
    request.outputs.add().name = "GENERATED_TEXT"
    base = request.SerializeToString()
    rng = random.Random(11)
    codes = Counter()
    with grpc.insecure_channel(f"127.0.0.1:{proxy.config.grpc_port}") as channel:
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=lambda data: data,
            response_deserializer=lambda data: data,
        )
        infer(base, timeout=30)  # the unmutated message is served
        for _ in range(200):
            try:
                infer(_mutated(base, rng), timeout=30)
                codes["OK"] += 1
            except grpc.RpcError as error:
                codes[error.code().name] += 1
                # Triton's own parser answers INTERNAL "Unable to parse request"
                assert error.code().name in ("INVALID_ARGUMENT", "NOT_FOUND"), error.details()
    assert codes["INVALID_ARGUMENT"] > 100, codes
