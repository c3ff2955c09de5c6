"""Start and stop a real ``tritonserver`` on this machine (``make serve`` and the tests).

Triton's server binary and python backend come from the ``nvidia-pytriton`` wheel in the
virtualenv. Following the tested recipe (shared/notes/triton-cpu-recipe.md): the python
backend is copied into a private backends folder together with the stub for this Python;
``PATH`` starts with the virtualenv's ``bin`` (the stub finds its Python there);
``LD_LIBRARY_PATH`` holds the wheel's bundled libraries and this interpreter's libpython; the
server binds to loopback unless asked otherwise. ``make serve`` and the integration tests
both go through :class:`TritonServer`, so they cannot drift apart.

Run: ``python -m instructner.deploy.server --model models/default --out build/out``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from instructner.deploy.procfs import PYTHON_BACKEND_SHM_PREFIX, python_stubs
from instructner.serving.triton_glue import INTERNAL_KEY_ENV

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Endpoints that change what the server does or tell about other callers' work: loading and
# unloading models, registering shared memory (a region key lets a caller read and write the
# server's memory), trace and log settings, statistics. They always answer only calls that
# carry the admin key header: the operator's key, or else a random key that is never shown,
# which closes them (docs/reliability.md).
ADMIN_PROTOCOLS = ("model-repository", "shared-memory", "trace", "logging", "statistics")
ADMIN_KEY_ENV = "INSTRUCTNER_ADMIN_KEY"
DEFAULT_ADMIN_HEADER = "instructner-admin-key"
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"  # how gRPC clients send a restricted-protocol header
# The server's files, including the python backend's /dev/shm regions that hold request text,
# are readable and writable by its own user only.
SERVER_UMASK = 0o077
_REDACTED = "***"


def protect_shared_memory(
    pid: int, shm: Path = Path("/dev/shm"), proc: Path = Path("/proc")
) -> list[Path]:
    """Make the python backend's shared-memory regions of server ``pid`` private (0600).

    The backend creates them 0644 whatever the umask, and they carry request text between
    the server and its stubs. Each stub names its region on its command line. Returns the
    files changed. Regions are created while the models load, before any request is served.
    """
    changed = []
    for stub in python_stubs(pid, proc):
        if not stub.region.startswith(PYTHON_BACKEND_SHM_PREFIX):
            continue
        path = shm / stub.region
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
                changed.append(path)
    return changed


class ServerError(RuntimeError):
    """The server did not start, did not become ready, or exited."""


@dataclass(frozen=True)
class TritonInstall:
    """The pieces of the ``nvidia-pytriton`` wheel the server needs."""

    binary: Path
    python_backend: Path
    stub: Path
    library_dirs: tuple[Path, ...]

    @classmethod
    def find(cls) -> TritonInstall:
        """Locate tritonserver, the python backend and this Python's stub in site-packages.

        Raises:
            ServerError: ``nvidia-pytriton`` is not installed or lacks a piece.

        """
        site = Path(sysconfig.get_paths()["purelib"])
        root = site / "pytriton" / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        install = cls(
            binary=root / "bin" / "tritonserver",
            python_backend=root / "backends" / "python",
            stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
            library_dirs=(
                site / "nvidia_pytriton.libs",
                Path(str(sysconfig.get_config_var("LIBDIR"))),
            ),
        )
        for path in (install.binary, install.python_backend, install.stub):
            if not path.exists():
                raise ServerError(
                    f"{path} is missing: install nvidia-pytriton==0.7.0 into this virtualenv "
                    "(`make setup`)"
                )
        return install

    def backends_dir(self, workdir: Path) -> Path:
        """Write a private backends folder (python backend + this Python's stub)."""
        backends = workdir / "backends"
        target = backends / "python"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(self.python_backend, target)
        shutil.copy2(self.stub, target / self.stub.name)
        return backends


@dataclass(frozen=True)
class RestrictedProtocols:
    """Triton protocols that answer only calls carrying a key header.

    gRPC clients send the header as ``triton-grpc-protocol-<header>``, HTTP clients as
    ``<header>``. The key never appears in logs or in ``repr``.
    """

    header: str
    key: str = field(repr=False)
    protocols: tuple[str, ...] = ADMIN_PROTOCOLS

    def __post_init__(self) -> None:
        if not self.header or not all(c.isalnum() or c in "-_" for c in self.header):
            raise ValueError(
                f"the key header name must be letters, digits, '-' or '_', got {self.header!r}"
            )
        if not self.key or any(c.isspace() or c in ",:=" for c in self.key):
            raise ValueError("the key must be non-empty, without whitespace, ',', ':' or '='")

    def flag_value(self) -> str:
        """Return the value of ``--grpc-restricted-protocol`` / ``--http-restricted-api``."""
        return f"{','.join(self.protocols)}:{self.header}={self.key}"

    @classmethod
    def random(cls, header: str = DEFAULT_ADMIN_HEADER) -> RestrictedProtocols:
        """Return the admin protocols behind a fresh random key (256 bits), kept in memory."""
        return cls(header, secrets.token_urlsafe(32))

    def grpc_metadata(self) -> dict[str, str]:
        """Return the metadata a gRPC call carries to pass the restriction."""
        return {GRPC_HEADER_PREFIX + self.header: self.key}

    def http_headers(self) -> dict[str, str]:
        """Return the headers an HTTP call carries to pass the restriction."""
        return {self.header: self.key}


@dataclass(frozen=True)
class ServerTLS:
    """TLS of the gRPC endpoint (Triton's HTTP endpoint has no TLS: keep it on loopback)."""

    certificate: Path
    key: Path
    root_certificate: Path | None = None  # the CA that client certificates must chain to
    mutual: bool = False  # require a client certificate signed by ``root_certificate``

    def __post_init__(self) -> None:
        if self.mutual and self.root_certificate is None:
            raise ValueError("mutual TLS needs the root certificate that signs client certificates")


@dataclass(frozen=True)
class ServerConfig:
    """Where the server reads its models and where it listens."""

    repository: Path
    workdir: Path  # backends folder and server log
    host: str = LOOPBACK
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    log_verbose: int = 0
    # admin endpoints behind a key header; None: behind a random key nobody is told (closed)
    restricted: RestrictedProtocols | None = None
    tls: ServerTLS | None = None  # gRPC over TLS
    extra_args: tuple[str, ...] = ()  # further tritonserver flags, appended as given
    # the key instruction_ner sends to its internal steps (INTERNAL_KEY_ENV); in
    # the server's environment only, so direct calls to the steps are refused. None opens the
    # steps to direct calls (the benchmark's own loopback server: perf_analyzer 2.51's
    # --request-parameter does not reach a python model's request parameters over gRPC).
    internal_key: str | None = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    def __post_init__(self) -> None:
        if self.restricted is None:
            object.__setattr__(self, "restricted", RestrictedProtocols.random())

    @classmethod
    def on_free_ports(cls, repository: Path, workdir: Path, **options: Any) -> ServerConfig:
        """Return a config listening on three loopback ports that are free right now."""
        http_port, grpc_port, metrics_port = free_ports(3)
        return cls(
            repository=repository,
            workdir=workdir,
            http_port=http_port,
            grpc_port=grpc_port,
            metrics_port=metrics_port,
            **options,
        )

    @property
    def admin(self) -> RestrictedProtocols:
        """The key header the admin endpoints of this server require."""
        assert self.restricted is not None  # set in __post_init__
        return self.restricted

    @property
    def grpc_url(self) -> str:
        """``host:port`` of the gRPC endpoint."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """``host:port`` of the HTTP endpoint."""
        return f"{self.host}:{self.http_port}"


def server_command(config: ServerConfig, install: TritonInstall, backends: Path) -> list[str]:
    """Return the tritonserver command line for ``config``."""
    host = config.host
    return [
        str(install.binary),
        f"--model-repository={config.repository.resolve()}",
        f"--backend-directory={backends.resolve()}",
        f"--http-port={config.http_port}",
        f"--grpc-port={config.grpc_port}",
        f"--metrics-port={config.metrics_port}",
        f"--http-address={host}",
        f"--grpc-address={host}",
        f"--metrics-address={host}",
        "--allow-gpu-metrics=false",
        "--pinned-memory-pool-byte-size=0",
        # Unloading takes ~1.2 s per python-backend instance, one after another (8 BLS
        # instances: ~10 s); 10 s cut that short and exited with code 1.
        "--exit-timeout-secs=30",
        "--disable-auto-complete-config",
        # Nobody loads or unloads models remotely: the repository is fixed at startup.
        "--model-control-mode=none",
        f"--log-verbose={config.log_verbose}",
        *_security_flags(config),
        *config.extra_args,
    ]


def _security_flags(config: ServerConfig) -> list[str]:
    value = config.admin.flag_value()
    flags = [f"--grpc-restricted-protocol={value}", f"--http-restricted-api={value}"]
    tls = config.tls
    if tls is not None:
        flags += [
            "--grpc-use-ssl-mutual=true" if tls.mutual else "--grpc-use-ssl=true",
            f"--grpc-server-cert={tls.certificate.resolve()}",
            f"--grpc-server-key={tls.key.resolve()}",
        ]
        if tls.root_certificate is not None:
            flags.append(f"--grpc-root-cert={tls.root_certificate.resolve()}")
    return flags


def redacted(command: Sequence[str]) -> list[str]:
    """Return ``command`` with the key of every restricted-protocol flag replaced by ``***``."""
    out = []
    for arg in command:
        if arg.startswith(("--grpc-restricted-protocol=", "--http-restricted-api=")):
            arg = arg.rsplit("=", 1)[0] + "=" + _REDACTED
        out.append(arg)
    return out


def server_environment(install: TritonInstall) -> dict[str, str]:
    """Return the environment: venv bin first on PATH, bundled libraries on LD_LIBRARY_PATH."""
    env = dict(os.environ)
    venv_bin = Path(sys.prefix) / "bin"
    env["PATH"] = os.pathsep.join([str(venv_bin), env.get("PATH", "")])
    libraries = [str(d) for d in install.library_dirs]
    if env.get("LD_LIBRARY_PATH"):
        libraries.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libraries)
    return env


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return ``count`` distinct TCP ports that are free on ``host`` right now."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))  # all held open together, so the ports differ
            ports.append(int(sock.getsockname()[1]))
        return ports


class TritonServer:
    """A tritonserver process: start, wait until ready, stop by PID.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. The server's output goes
    to :attr:`log_path`; :meth:`log_tail` returns its end for error messages.
    """

    def __init__(self, config: ServerConfig, install: TritonInstall | None = None) -> None:
        self.config = config
        self.install = install or TritonInstall.find()
        self.log_path = config.workdir / "tritonserver.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self.process.pid if self.process else None

    def start(self) -> None:
        """Launch the server (returns at once; see :meth:`wait_ready`)."""
        self.config.workdir.mkdir(parents=True, exist_ok=True)
        backends = self.install.backends_dir(self.config.workdir)
        command = server_command(self.config, self.install, backends)
        logger.info("starting: %s", " ".join(redacted(command)))
        if self.log_path.is_file() and self.log_path.stat().st_size:
            # a restart keeps the previous run's log (why it died) beside the new one
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                cwd=self.config.workdir,
                umask=SERVER_UMASK,
            )

    def _environment(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in server_environment(self.install).items()
            if name != INTERNAL_KEY_ENV  # never inherited: this server's own or none
        }
        if self.config.internal_key is not None:
            env[INTERNAL_KEY_ENV] = self.config.internal_key
        return env

    def log_tail(self, chars: int = 6000) -> str:
        """Return the last ``chars`` characters of the server log."""
        if not self.log_path.is_file():
            return "(no server log)"
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def wait_ready(
        self,
        timeout_s: float = 120.0,
        models: Sequence[str] = (),
        should_stop: Callable[[], bool] = lambda: False,
    ) -> float:
        """Wait until the server and ``models`` are ready; return the seconds it took.

        ``should_stop`` is asked every quarter second (a SIGTERM while the models load).

        Raises:
            ServerError: the process exited or the timeout passed (the log tail included).

        """
        if self.process is None:
            raise ServerError("the server was not started")
        started = time.monotonic()
        probe, close = self._readiness_probe(models)
        try:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise ServerError(
                        f"tritonserver exited with code {code} before it was ready"
                        f"{_load_failures(self.log_tail(200_000))}; log:\n" + self.log_tail()
                    )
                if self.process.pid is not None:
                    protect_shared_memory(self.process.pid)
                # ready, and still our process that answered (not another server's port)
                if probe() and self.process.poll() is None:
                    protect_shared_memory(self.process.pid)
                    return time.monotonic() - started
                if should_stop():
                    raise ServerError("asked to stop while tritonserver was starting")
                if time.monotonic() - started > timeout_s:
                    raise ServerError(
                        f"tritonserver was not ready after {timeout_s:.0f} s; log:\n"
                        + self.log_tail()
                    )
                time.sleep(0.25)
        finally:
            close()

    def _readiness_probe(
        self, models: Sequence[str]
    ) -> tuple[Callable[[], bool], Callable[[], None]]:
        """Return (probe, close): ``probe()`` is True once the server and ``models`` are ready.

        Plain gRPC by default; over HTTP when gRPC speaks TLS (the launcher may hold no client
        certificate), through the health endpoints that no key header restricts.
        """
        if self.config.tls is not None:
            base = f"http://{self.config.http_url}/v2"
            paths = ["/health/ready", *(f"/models/{m}/ready" for m in models)]

            def http_probe() -> bool:
                for path in paths:
                    try:
                        with urllib.request.urlopen(base + path, timeout=2) as response:
                            if response.status != 200:
                                return False
                    except OSError:  # refused, not ready (HTTP 400) or timed out
                        return False
                return True

            return http_probe, lambda: None

        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        client = grpcclient.InferenceServerClient(url=self.config.grpc_url)

        def grpc_probe() -> bool:
            with contextlib.suppress(InferenceServerException):
                return bool(
                    client.is_server_ready(client_timeout=2)
                    and all(client.is_model_ready(m, client_timeout=2) for m in models)
                )
            return False

        return grpc_probe, client.close

    def stop(self, timeout_s: float = 45.0) -> int | None:
        """Stop the server with SIGTERM (SIGKILL after ``timeout_s``); return its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        return stop_process(process, signal.SIGTERM, timeout_s, "tritonserver")

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_process(
    process: subprocess.Popen[bytes], stop_signal: int, timeout_s: float, name: str
) -> int:
    """Send ``stop_signal`` to a running process, SIGKILL it after ``timeout_s``; its exit code."""
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning(
                "%s %d ignored %s: killing it",
                name,
                process.pid,
                signal.Signals(stop_signal).name,
            )
            process.kill()
    return process.wait()


def _load_failures(log: str) -> str:
    """Return ``": <the log's model load failures>"``, or ``""`` when it names none.

    One line per failed model, without the python traceback Triton appends to the reason.
    """
    failures = [
        line.split("] ", 1)[-1].strip().strip('"').split("\\n\\nAt:")[0]
        for line in log.splitlines()
        if "failed to load '" in line and "' version " in line  # the line with the reason
    ]
    return ": " + "; ".join(dict.fromkeys(failures)) if failures else ""


def serve_parser() -> argparse.ArgumentParser:
    """Return the command line of ``make serve`` (``python -m instructner.deploy.server``)."""
    from instructner.deploy.build import add_build_arguments

    parser = argparse.ArgumentParser(description="Serve InstructionNER with tritonserver.")
    add_build_arguments(parser)
    parser.add_argument(
        "--host",
        default=LOOPBACK,
        help="address to bind (default 127.0.0.1; 0.0.0.0 serves every interface)",
    )
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--log-verbose", type=int, default=0)
    security = parser.add_argument_group("security (docs/reliability.md)")
    security.add_argument(
        "--admin-key-header",
        metavar="NAME",
        help=f"open the admin endpoints ({', '.join(ADMIN_PROTOCOLS)}) of gRPC and HTTP to "
        f"calls carrying this header with the key in ${ADMIN_KEY_ENV} (never on the command "
        "line); without it they are closed (a random key that is never shown)",
    )
    security.add_argument("--tls-cert", type=Path, help="PEM server certificate: gRPC over TLS")
    security.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    security.add_argument(
        "--tls-root-cert", type=Path, help="PEM CA certificate that client certificates chain to"
    )
    security.add_argument(
        "--tls-mutual",
        action="store_true",
        help="require client certificates signed by --tls-root-cert (mutual TLS)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the models to load (default 300)",
    )
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        help="restart tritonserver when it or a model process dies, at most this many times "
        "within --restart-window seconds, then exit 1 (default 5; 0 exits at the first death)",
    )
    parser.add_argument("--restart-window", type=float, default=600.0, help="seconds (600)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Build the repository if needed, serve it until interrupted; returns the exit code."""
    from instructner.deploy.build import ensure_repository, settings_from_args
    from instructner.deploy.supervise import RestartPolicy, Supervisor

    parser = serve_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        restricted, tls = _security_from_args(args)
    except ValueError as error:
        logger.error("%s", error)
        return 2

    if restricted is None:
        logger.info(
            "admin endpoints (%s) are closed: they need a random key that is not shown; "
            "--admin-key-header NAME with $%s opens them to the key's holders",
            ", ".join(ADMIN_PROTOCOLS),
            ADMIN_KEY_ENV,
        )
    build = ensure_repository(settings_from_args(args))
    if build.warning:
        _shout(build.warning)
    config = ServerConfig(
        repository=build.repository,
        workdir=args.out / "server",
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        log_verbose=args.log_verbose,
        restricted=restricted,
        tls=tls,
    )
    server = TritonServer(config)
    supervisor = Supervisor(
        server,
        ["instruction_ner"],
        RestartPolicy(args.max_restarts, args.restart_window),
        ready_timeout_s=args.ready_timeout,
    )
    stop = {"signal": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        took = supervisor.start()
        logger.info(
            "ready in %.1f s: gRPC %s, HTTP %s, metrics %s:%d; model instruction_ner "
            "(log: %s; Ctrl-C stops)",
            took,
            config.grpc_url,
            config.http_url,
            config.host,
            config.metrics_port,
            server.log_path,
        )
        if build.warning:
            _shout(build.warning)
        supervisor.run(lambda: bool(stop["signal"]))
        return 0
    except ServerError as error:
        logger.error("%s", error)
        return 1
    finally:
        supervisor.stop()


def _security_from_args(
    args: argparse.Namespace,
) -> tuple[RestrictedProtocols | None, ServerTLS | None]:
    """Return the key-header and TLS settings the command line asks for.

    Raises:
        ValueError: an option is incomplete (the message says which), or a file is missing.

    """
    restricted = None
    if args.admin_key_header:
        key = os.environ.get(ADMIN_KEY_ENV, "")
        if not key:
            raise ValueError(
                f"--admin-key-header {args.admin_key_header} needs the key in the environment "
                f"variable {ADMIN_KEY_ENV}, which is empty or unset"
            )
        restricted = RestrictedProtocols(args.admin_key_header, key)
    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise ValueError("--tls-cert and --tls-key must be given together")
        for path in (args.tls_cert, args.tls_key, args.tls_root_cert):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        tls = ServerTLS(args.tls_cert, args.tls_key, args.tls_root_cert, args.tls_mutual)
    elif args.tls_mutual or args.tls_root_cert:
        raise ValueError("--tls-root-cert and --tls-mutual need --tls-cert and --tls-key")
    return restricted, tls


def _shout(message: str) -> None:
    bar = "!" * 78
    logger.warning("\n%s\n%s\n%s", bar, message, bar)


if __name__ == "__main__":
    sys.exit(main())
