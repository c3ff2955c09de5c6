"""Connection options: TLS, keepalive, message size, metadata and the retry policy."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from ._errors import InvalidInputError
from ._validation import check_timeout

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ChannelConfig",
    "Keepalive",
    "RetryPolicy",
    "TLSConfig",
]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Pem material: bytes are the PEM content itself, a str or Path names a file holding it.
PemSource = bytes | str | Path


def _read_pem(what: str, source: PemSource | None) -> bytes | None:
    if source is None or isinstance(source, bytes):
        return source
    path = Path(source)
    try:
        return path.read_bytes()
    except OSError as error:
        raise InvalidInputError(
            f"cannot read {what} file {str(path)!r}: {error.strerror}"
        ) from None


@dataclass(frozen=True)
class TLSConfig:
    """TLS settings of the channel.

    Each PEM field takes the PEM content as ``bytes`` or a path (``str``/``Path``) to a file.

    Attributes:
        root_certificates: CA certificate(s) that signed the server's certificate; ``None`` uses
            the system's default roots.
        client_certificate: certificate chain for mutual TLS (needs ``client_key``).
        client_key: private key for mutual TLS (needs ``client_certificate``).
        server_name_override: host name to check the server certificate against, when it differs
            from the host in the URL (for example behind a tunnel). Testing aid, use with care.

    """

    root_certificates: PemSource | None = None
    client_certificate: PemSource | None = None
    client_key: PemSource | None = None
    server_name_override: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """Read the PEM material and return the gRPC channel credentials."""
        if (self.client_certificate is None) != (self.client_key is None):
            raise InvalidInputError(
                "client_certificate and client_key must be given together for mutual TLS"
            )
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem("root certificate", self.root_certificates),
            private_key=_read_pem("client key", self.client_key),
            certificate_chain=_read_pem("client certificate", self.client_certificate),
        )


@dataclass(frozen=True)
class Keepalive:
    """HTTP/2 keepalive pings, to notice dead connections behind load balancers.

    The server must allow pings this frequent (its ``--grpc-keepalive-*`` flags), otherwise
    it answers with GOAWAY ``too_many_pings``.
    """

    time_ms: int = 30_000
    timeout_ms: int = 20_000
    permit_without_calls: bool = False
    max_pings_without_data: int = 2

    def channel_args(self) -> list[tuple[str, Any]]:
        """Return the gRPC channel arguments that set these values."""
        for name in ("time_ms", "timeout_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidInputError(f"keepalive {name} must be a positive int, got {value!r}")
        if self.max_pings_without_data < 0:
            raise InvalidInputError(
                f"keepalive max_pings_without_data must be >= 0, got {self.max_pings_without_data}"
            )
        return [
            ("grpc.keepalive_time_ms", self.time_ms),
            ("grpc.keepalive_timeout_ms", self.timeout_ms),
            ("grpc.keepalive_permit_without_calls", int(self.permit_without_calls)),
            ("grpc.http2.max_pings_without_data", self.max_pings_without_data),
        ]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for calls that failed because the server was unavailable.

    Only :class:`~instructner_client.ServerUnavailableError` is retried (all calls of this
    client are idempotent), and never past the call's timeout.

    Attributes:
        max_attempts: attempts in total, including the first; 1 disables retries.
        initial_backoff: seconds to wait before the second attempt.
        max_backoff: upper bound of one wait.
        multiplier: growth of the wait per attempt.
        jitter: the wait is scaled by a random factor in ``[1 - jitter, 1]`` so that many
            clients do not reconnect in lockstep.

    """

    max_attempts: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidInputError(f"max_attempts must be an int, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise InvalidInputError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("initial_backoff", "max_backoff"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise InvalidInputError(f"{name} must be a finite number >= 0, got {value}")
        if not math.isfinite(self.multiplier) or self.multiplier < 1:
            raise InvalidInputError(f"multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise InvalidInputError(f"jitter must be within [0, 1], got {self.jitter}")

    def backoff(self, failed_attempts: int) -> float:
        """Return the seconds to wait after ``failed_attempts`` failures (1 for the first)."""
        base = min(
            self.max_backoff, self.initial_backoff * self.multiplier ** (failed_attempts - 1)
        )
        return base * (1.0 - self.jitter * random.random())


NO_RETRY = RetryPolicy(max_attempts=1)

_METADATA_KEY = re.compile(r"^[0-9a-z_.-]+$")


def check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Return the extra gRPC metadata as a dict after checking keys and values."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(
            f"metadata must be a mapping of header names to values, got {type(metadata).__name__}"
        )
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise InvalidInputError(
                f"metadata key {key!r} must be lowercase letters, digits, '-', '_' or '.'"
            )
        if key.startswith("grpc-"):
            raise InvalidInputError(f"metadata key {key!r} is reserved by gRPC")
        if key.endswith("-bin"):
            raise InvalidInputError(f"metadata key {key!r}: binary headers are not supported")
        if not isinstance(value, str) or not value.isprintable() or not value.isascii():
            raise InvalidInputError(f"metadata value of {key!r} must be printable ASCII text")
        checked[key] = value
    return checked


@dataclass(frozen=True)
class ChannelConfig:
    """Everything needed to open the channel, checked once at client construction."""

    url: str
    credentials: grpc.ChannelCredentials | None
    channel_args: list[tuple[str, Any]]
    metadata: dict[str, str]
    timeout: float


def check_url(url: object) -> str:
    """Check that ``url`` is ``host:port`` as tritonclient expects it."""
    if not isinstance(url, str) or not url:
        raise InvalidInputError(f"url must be a non-empty 'host:port' string, got {url!r}")
    if "://" in url:
        raise InvalidInputError(f"url {url!r} must be 'host:port' without a scheme")
    host, sep, port = url.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInputError(f"url {url!r} must be 'host:port' with a port in 1..65535")
    return url


def make_channel_config(
    url: object,
    *,
    timeout: object,
    tls: TLSConfig | None,
    metadata: Mapping[str, str] | None,
    max_message_bytes: object,
    keepalive: Keepalive | None,
) -> ChannelConfig:
    """Validate the connection options of a client and turn them into channel settings."""
    checked_url = check_url(url)
    checked_timeout = check_timeout(timeout)
    if (
        isinstance(max_message_bytes, bool)
        or not isinstance(max_message_bytes, int)
        or not 0 < max_message_bytes < 2**31
    ):
        raise InvalidInputError(
            f"max_message_bytes must be an int in 1..2147483647, got {max_message_bytes!r}"
        )
    args: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
    if keepalive is not None:
        # Opt-in: gRPC clients send no keepalive pings by default, and pings more frequent than
        # the server allows get the connection closed (GOAWAY too_many_pings).
        if not isinstance(keepalive, Keepalive):
            raise InvalidInputError(
                f"keepalive must be a Keepalive, got {type(keepalive).__name__}"
            )
        args += keepalive.channel_args()
    credentials = None
    if tls is not None:
        if not isinstance(tls, TLSConfig):
            raise InvalidInputError(f"tls must be a TLSConfig, got {type(tls).__name__}")
        credentials = tls.credentials()
        if tls.server_name_override:
            args.append(("grpc.ssl_target_name_override", tls.server_name_override))
    return ChannelConfig(
        url=checked_url,
        credentials=credentials,
        channel_args=args,
        metadata=check_metadata(metadata),
        timeout=checked_timeout,
    )
