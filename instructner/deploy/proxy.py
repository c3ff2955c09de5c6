"""The reference front proxy: nginx in front of tritonserver for network-exposed deployments.

``deploy/nginx/instructner.conf.template`` is filled here (``string.Template``, every key
required) and nginx (Debian package ``nginx-light`` or ``nginx``) runs it in the foreground.
Only ``instruction_ner`` inference, its metadata and health pass; compressed bodies are refused,
bodies capped, slow and idle connections closed. The integration tests start it in front of a
real server; ``make proxy`` starts it in front of ``make serve``.

Run: ``python -m instructner.deploy.proxy --upstream-http-port 8000 --upstream-grpc-port 8001``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template
from types import TracebackType

from instructner.deploy.server import stop_process

logger = logging.getLogger(__name__)

NGINX_DIR = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
TEMPLATE = NGINX_DIR / "instructner.conf.template"
INFER_CHECK = NGINX_DIR / "infer_request.js"  # njs: malformed HTTP inference bodies -> 400
GRPC_CHECK = NGINX_DIR / "grpc_request.js"  # njs: gRPC calls to the public model, names bounded
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
# Dynamic modules of Debian's nginx: the stream module (libnginx-mod-stream) and njs
# (libnginx-mod-http-js).
MODULE_DIRS = (Path("/usr/lib/nginx/modules"), Path("/usr/share/nginx/modules"))
MODULES = {"stream_module": "ngx_stream_module.so", "js_module": "ngx_http_js_module.so"}
# Each caller connection takes up to four in a worker: its own, the hop to the http server,
# the http side and a connection to Triton.
CONNECTIONS_PER_CALLER = 4


def find_module(file_name: str, dirs: tuple[Path, ...] = MODULE_DIRS) -> Path:
    """Return the path of an nginx dynamic module.

    Raises:
        ProxyError: it is not installed (``make setup-proxy`` installs it).

    """
    for directory in dirs:
        if (directory / file_name).is_file():
            return directory / file_name
    raise ProxyError(
        f"nginx module {file_name} is not installed in {', '.join(map(str, dirs))}: "
        "`make setup-proxy` (apt-get install libnginx-mod-stream libnginx-mod-http-js)"
    )


def open_files_limit() -> int:
    """Return the hard limit of open files of this process (what nginx may raise itself to)."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1_048_576 if hard == resource.RLIM_INFINITY else int(hard)


class ProxyError(RuntimeError):
    """nginx is missing, refused the configuration, or did not start listening."""


@dataclass(frozen=True)
class ProxyConfig:
    """Where the proxy listens, where Triton is, and the limits it enforces."""

    prefix: Path  # configuration, pid file, logs and temporary files
    upstream_http_port: int
    upstream_grpc_port: int
    http_port: int = 8080
    grpc_port: int = 8081
    listen_host: str = "127.0.0.1"
    upstream_host: str = "127.0.0.1"
    timeout_s: int = 10  # headers, body and slow readers
    idle_timeout_s: int = 30  # an idle keep-alive or HTTP/2 connection
    request_timeout_s: int = 60  # waiting for Triton's answer
    max_body_bytes: int = 1_048_576
    max_connections_per_client: int = 64  # per address and port, counted at accept
    max_streams_per_connection: int = 8  # gRPC calls in flight on one HTTP/2 connection
    max_callers: int = 4096  # connections the workers hold together (0: from the open-files limit)
    workers: int = 0  # 0: one per CPU core

    def worker_connections(self) -> int:
        """Return each worker's connection slots: ``max_callers`` spread over the workers."""
        workers = self.workers or (os.cpu_count() or 1)
        return max(512, self.max_callers * CONNECTIONS_PER_CALLER // workers)

    def values(self) -> dict[str, object]:
        """Return the template's fill values."""
        # As root, nginx runs its workers as nobody; they must reach the prefix's files.
        user = "user root;" if os.geteuid() == 0 else ""
        connections = self.worker_connections()
        return {
            "stream_module": find_module(MODULES["stream_module"]),
            "js_module": find_module(MODULES["js_module"]),
            "infer_check": INFER_CHECK,
            "grpc_check": GRPC_CHECK,
            "workers": self.workers or "auto",
            "worker_connections": connections,
            "max_open_files": min(open_files_limit(), 2 * connections + 64),
            "stream_timeout_s": self.request_timeout_s + self.idle_timeout_s,
            "prefix": self.prefix.resolve(),
            "user_directive": user,
            "listen_host": self.listen_host,
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "upstream_host": self.upstream_host,
            "upstream_http_port": self.upstream_http_port,
            "upstream_grpc_port": self.upstream_grpc_port,
            "timeout_s": self.timeout_s,
            "idle_timeout_s": self.idle_timeout_s,
            "request_timeout_s": self.request_timeout_s,
            "max_body_bytes": self.max_body_bytes,
            "body_buffer_bytes": self.max_body_bytes + 65_536,
            "max_streams_per_connection": self.max_streams_per_connection,
            "max_connections_per_client": self.max_connections_per_client,
        }


class _BracedTemplate(Template):
    """``${key}`` placeholders only: nginx's own ``$variables`` stay as written."""

    pattern = r"""
    \$(?:
      (?P<escaped>(?!))
      | \{(?P<braced>[_a-z][_a-z0-9]*)\}
      | (?P<named>(?!))
      | (?P<invalid>(?!))
    )
    """  # type: ignore[assignment]  # a str: Template compiles it


def render(config: ProxyConfig, template: Path = TEMPLATE) -> str:
    """Return the nginx configuration for ``config`` (a missing key raises KeyError)."""
    return _BracedTemplate(template.read_text(encoding="utf-8")).substitute(config.values())


def find_nginx() -> Path:
    """Return the nginx binary.

    Raises:
        ProxyError: nginx is not installed (``make setup-proxy`` installs it).

    """
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ProxyError("nginx is not installed: `make setup-proxy` (apt-get install nginx-light)")


class NginxProxy:
    """An nginx process running :func:`render`'s configuration; stop it by PID."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.binary = find_nginx()
        self.conf_path = config.prefix / "nginx.conf"
        self.process: subprocess.Popen[bytes] | None = None

    def write(self) -> Path:
        """Write the configuration and the folders it names; check it with ``nginx -t``."""
        prefix = self.config.prefix
        prefix.mkdir(parents=True, exist_ok=True)
        for name in TEMP_DIRS:
            (prefix / name).mkdir(exist_ok=True)
        self.conf_path.write_text(render(self.config), encoding="utf-8")
        check = subprocess.run(
            [str(self.binary), "-t", "-q", "-p", str(prefix), "-c", str(self.conf_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise ProxyError(f"nginx refused {self.conf_path}: {check.stderr.strip()}")
        return self.conf_path

    def start(self, timeout_s: float = 15.0) -> None:
        """Start nginx in the foreground and wait until both ports accept connections."""
        self.write()
        log = open(self.config.prefix / "nginx.out", "wb")  # noqa: SIM115 - kept by the process
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "-p",
                str(self.config.prefix),
                "-c",
                str(self.conf_path),
                "-g",
                "daemon off;",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        ports = (self.config.http_port, self.config.grpc_port)
        while not all(_listening(self.config.listen_host, port) for port in ports):
            if self.process.poll() is not None:
                raise ProxyError(f"nginx exited with {self.process.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ProxyError(f"nginx did not listen on {ports} in {timeout_s:.0f} s")
            time.sleep(0.1)

    def log_tail(self, chars: int = 3000) -> str:
        """Return the end of nginx's error log."""
        path = self.config.prefix / "error.log"
        return path.read_text(errors="replace")[-chars:] if path.is_file() else "(no log)"

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """Stop nginx (SIGQUIT: finish the requests in flight; SIGKILL after ``timeout_s``)."""
        process, self.process = self.process, None
        if process is None:
            return None
        return stop_process(process, signal.SIGQUIT, timeout_s, "nginx")

    def __enter__(self) -> NginxProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def main(argv: list[str] | None = None) -> int:
    """Run the proxy in front of a running server until interrupted."""
    parser = argparse.ArgumentParser(
        description="Run the reference nginx front proxy in front of tritonserver."
    )
    parser.add_argument("--upstream-http-port", type=int, default=8000)
    parser.add_argument("--upstream-grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8080, help="default: %(default)s")
    parser.add_argument("--grpc-port", type=int, default=8081, help="default: %(default)s")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    parser.add_argument("--prefix", type=Path, default=Path("build/out/proxy"))
    parser.add_argument(
        "--print", action="store_true", help="print the configuration and exit (nothing runs)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = ProxyConfig(
        prefix=args.prefix,
        upstream_http_port=args.upstream_http_port,
        upstream_grpc_port=args.upstream_grpc_port,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        listen_host=args.host,
    )
    if args.print:
        sys.stdout.write(render(config))
        return 0
    try:
        proxy = NginxProxy(config)
        proxy.start()
    except ProxyError as error:
        logger.error("%s", error)
        return 1
    logger.info(
        "proxy on %s: HTTP %d, gRPC %d -> tritonserver HTTP %d, gRPC %d (Ctrl-C stops)",
        args.host,
        args.http_port,
        args.grpc_port,
        args.upstream_http_port,
        args.upstream_grpc_port,
    )
    stop = {"signal": 0}
    signal.signal(signal.SIGINT, lambda n, f: stop.update(signal=n))
    signal.signal(signal.SIGTERM, lambda n, f: stop.update(signal=n))
    try:
        while not stop["signal"] and proxy.process and proxy.process.poll() is None:
            time.sleep(0.5)
    finally:
        code = proxy.stop()
    return 0 if stop["signal"] else (code or 1)


if __name__ == "__main__":
    sys.exit(main())
