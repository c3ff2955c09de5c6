import sys
from pathlib import Path

import pytest

from instructner.deploy.server import (
    LOOPBACK,
    ServerConfig,
    ServerError,
    TritonInstall,
    TritonServer,
    free_ports,
    server_command,
    server_environment,
)


def fake_install(tmp_path: Path, binary: Path) -> TritonInstall:
    backend = tmp_path / "python_backend"
    backend.mkdir()
    (backend / "libtriton_python.so").write_text("")
    stub = tmp_path / "stub" / "triton_python_backend_stub"
    stub.parent.mkdir()
    stub.write_text("")
    return TritonInstall(binary, backend, stub, (tmp_path / "libs",))


def test_the_virtualenv_holds_tritonserver_and_the_stub_for_this_python():
    install = TritonInstall.find()
    assert install.binary.name == "tritonserver" and install.binary.is_file()
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in str(install.stub)


def test_server_binds_every_endpoint_to_loopback_by_default(tmp_path):
    config = ServerConfig(repository=tmp_path / "repo", workdir=tmp_path)
    command = server_command(config, fake_install(tmp_path, Path("/x")), tmp_path / "backends")
    for endpoint in ("http", "grpc", "metrics"):
        assert f"--{endpoint}-address={LOOPBACK}" in command
    assert "--http-port=8000" in command and "--grpc-port=8001" in command
    assert "--metrics-port=8002" in command


def test_server_binds_another_address_only_when_asked(tmp_path):
    config = ServerConfig(repository=tmp_path, workdir=tmp_path, host="0.0.0.0", grpc_port=9001)
    command = server_command(config, fake_install(tmp_path, Path("/x")), tmp_path)
    assert "--grpc-address=0.0.0.0" in command and "--grpc-port=9001" in command


def test_server_environment_puts_the_virtualenv_first_and_the_bundled_libraries(tmp_path):
    install = fake_install(tmp_path, Path("/x"))
    env = server_environment(install)
    assert env["PATH"].split(":")[0] == str(Path(sys.prefix) / "bin")
    assert env["LD_LIBRARY_PATH"].split(":")[0] == str(tmp_path / "libs")


def test_backends_dir_holds_the_python_backend_and_the_stub(tmp_path):
    backends = fake_install(tmp_path, Path("/x")).backends_dir(tmp_path / "work")
    assert sorted(p.name for p in (backends / "python").iterdir()) == [
        "libtriton_python.so",
        "triton_python_backend_stub",
    ]


def test_free_ports_are_distinct():
    ports = free_ports(5)
    assert len(set(ports)) == 5


def test_wait_ready_reports_an_early_exit_with_the_log(tmp_path):
    script = tmp_path / "fake-server"
    script.write_text("#!/bin/sh\necho 'error: creating server: model failed'\nexit 3\n")
    script.chmod(0o755)
    # free ports: a `make serve` server on the default ones must not answer this probe
    server = TritonServer(
        ServerConfig.on_free_ports(repository=tmp_path, workdir=tmp_path / "work"),
        install=fake_install(tmp_path, script),
    )
    server.start()
    with pytest.raises(ServerError, match="(?s)exited with code 3.*model failed"):
        server.wait_ready(timeout_s=30)
    assert server.stop() == 3
