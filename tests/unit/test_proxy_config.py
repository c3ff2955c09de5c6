"""The reference front proxy's nginx configuration, rendered without running nginx."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from instructner.deploy import proxy
from instructner.deploy.proxy import ProxyConfig, ProxyError, find_module, render


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "modules"
    folder.mkdir()
    for name in proxy.MODULES.values():
        (folder / name).write_text("")
    monkeypatch.setattr(proxy, "MODULE_DIRS", (folder,))
    monkeypatch.setattr(
        proxy, "find_module", lambda name: find_module(name, (folder,)), raising=True
    )
    return folder


def _config(tmp_path: Path, **overrides: object) -> ProxyConfig:
    return ProxyConfig(
        prefix=tmp_path / "prefix", upstream_http_port=8000, upstream_grpc_port=8001, **overrides
    )


def test_every_placeholder_is_filled_and_both_checks_are_loaded(tmp_path: Path, modules: Path):
    text = render(_config(tmp_path))
    assert not re.search(r"\$\{[a-z_]+\}", text)
    assert f"load_module {modules / 'ngx_stream_module.so'};" in text
    assert f"js_import infer_request from {proxy.INFER_CHECK};" in text
    assert f"js_import grpc_request from {proxy.GRPC_CHECK};" in text


def test_connections_are_counted_per_caller_at_accept_on_both_ports(tmp_path: Path, modules: Path):
    text = render(_config(tmp_path, max_connections_per_client=7))
    stream = text[text.index("stream {") : text.index("http {")]
    assert stream.count("limit_conn http_callers 7;") == 1
    assert stream.count("limit_conn grpc_callers 7;") == 1
    assert "listen 127.0.0.1:8080" in stream and "listen 127.0.0.1:8081" in stream
    http = text[text.index("http {") :]
    assert "limit_conn " not in http  # behind the stream hop every caller is unix:
    assert "real_ip_header proxy_protocol;" in http


def test_workers_share_the_callers_connections(tmp_path: Path, modules: Path):
    config = _config(tmp_path, max_callers=1000, workers=2)
    assert config.worker_connections() == 2000  # 4 connections per caller, over 2 workers
    text = render(config)
    assert re.search(r"worker_processes 2;", text)
    assert "worker_connections 2000;" in text


def test_public_grpc_calls_go_through_the_check_first(tmp_path: Path, modules: Path):
    text = render(_config(tmp_path))
    for method, handler in (
        ("ModelInfer", "infer"),
        ("ModelMetadata", "model"),
        ("ModelReady", "model"),
    ):
        expected = (
            f"/inference.GRPCInferenceService/{method} {{ js_content grpc_request.{handler}; }}"
        )
        assert expected in text


def test_a_missing_module_names_the_package_to_install(tmp_path: Path):
    with pytest.raises(ProxyError, match="apt-get install libnginx-mod-stream"):
        find_module("ngx_stream_module.so", (tmp_path,))
