"""The client without I/O: settings, request building, response decoding, retry decisions.

Everything the blocking and the asyncio client do alike is here, written once: the two
differ only in how they wait (``_sync_io.SyncTransport``: threads and ``time.sleep``;
``_async_io.AsyncTransport``: tasks and ``asyncio.sleep``). Their public methods are written
once too, in ``_async.py``; ``build_sync.py`` writes ``_sync.py`` from it at build time.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._codec import encode_request, requested_outputs
from ._errors import (
    DeadlineExceededError,
    InstructNERError,
    InvalidInputError,
    ModelNotReadyError,
    ServerUnavailableError,
    map_error,
)
from ._options import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ChannelConfig,
    Keepalive,
    RetryPolicy,
    TLSConfig,
    make_channel_config,
)
from ._types import Extraction
from ._validation import (
    TASKS,
    InferenceRequest,
    check_labels,
    check_min_score,
    check_timeout,
    make_request,
)

__all__ = [
    "DEFAULT_MODEL",
    "Attempts",
    "ClientCore",
    "ClientSettings",
    "Deadline",
    "make_settings",
    "retry_delay",
]

logger = logging.getLogger("instructner_client")

# Called with the index of each finished item of a batch call (progress bars).
OnDone = Callable[[int], None]

DEFAULT_MODEL = "instruction_ner"
DEFAULT_URL = "localhost:8001"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_CONCURRENCY = 8


@dataclass(frozen=True)
class ClientSettings:
    """Validated settings of one client."""

    channel: ChannelConfig
    model_name: str
    model_version: str
    retry: RetryPolicy
    max_concurrency: int

    @property
    def target(self) -> str:
        """Describe what the client talks to, for error messages."""
        version = f" version {self.model_version}" if self.model_version else ""
        return f"model {self.model_name!r}{version} at {self.channel.url}"


def check_concurrency(value: object) -> int:
    """Return ``value`` if it is a usable number of requests in flight."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"max_concurrency must be an int >= 1, got {value!r}")
    return value


def make_settings(
    url: object,
    *,
    model_name: object,
    model_version: object,
    timeout: object,
    tls: TLSConfig | None,
    metadata: Mapping[str, str] | None,
    max_message_bytes: object,
    keepalive: Keepalive | None,
    retry: RetryPolicy | None,
    max_concurrency: object,
) -> ClientSettings:
    """Validate every constructor argument of a client."""
    if not isinstance(model_name, str) or not model_name.strip():
        raise InvalidInputError(f"model_name must be a non-empty str, got {model_name!r}")
    if isinstance(model_version, int) and not isinstance(model_version, bool):
        model_version = str(model_version)
    if not isinstance(model_version, str) or (model_version and not model_version.isdigit()):
        raise InvalidInputError(
            f"model_version must be '' (latest) or a version number, got {model_version!r}"
        )
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidInputError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
    return ClientSettings(
        channel=make_channel_config(
            url,
            timeout=timeout,
            tls=tls,
            metadata=metadata,
            max_message_bytes=max_message_bytes
            if max_message_bytes is not None
            else DEFAULT_MAX_MESSAGE_BYTES,
            keepalive=keepalive,
        ),
        model_name=model_name,
        model_version=model_version,
        retry=retry if retry is not None else RetryPolicy(),
        max_concurrency=check_concurrency(max_concurrency),
    )


class Deadline:
    """The end of one call's time budget, shared by all of its attempts."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._end = time.monotonic() + timeout

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._end - time.monotonic())


def call_timeout(timeout: object, default: float) -> float:
    """Return the timeout of one call: the argument if given, else the client's default."""
    return default if timeout is None else check_timeout(timeout)


def retry_delay(
    error: InstructNERError, attempt: int, policy: RetryPolicy, deadline: Deadline
) -> float | None:
    """Return how long to wait before another attempt, or None to give up and raise.

    Only unavailability is retried; a retry that could not start before the deadline is not
    waited for.
    """
    if not isinstance(error, ServerUnavailableError) or attempt >= policy.max_attempts:
        return None
    delay = policy.backoff(attempt)
    if delay >= deadline.remaining():
        return None
    return delay


def final_error(
    error: InstructNERError, attempts: int, timeout: float | None = None
) -> InstructNERError:
    """Return the error to raise after ``attempts`` attempts.

    The count is added when > 1, and a deadline error says the call's timeout.
    """
    notes = []
    if isinstance(error, DeadlineExceededError) and timeout is not None:
        notes.append(f"the call's timeout is {timeout:g} s")
    if attempts > 1:
        notes.append(f"gave up after {attempts} attempts")
    if not notes:
        return error
    return type(error)(f"{error.message} ({'; '.join(notes)})", code=error.code)


def entity_lists(results: list[Any]) -> list[Any]:
    """Turn each :class:`Extraction` of a batch into its list of entities (errors stay)."""
    return [list(r.entities) if isinstance(r, Extraction) else r for r in results]


def batch_requests(
    task: str, texts: object, labels: object = (), entities: object = (), min_score: object = 0.0
) -> list[InferenceRequest | InvalidInputError]:
    """Validate every item of a batch call; an invalid item becomes its error, naming its index.

    ``entities`` is, for the type task, one list per text of entity words or (start, end)
    spans of that text.
    """
    if task not in TASKS:
        raise InvalidInputError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InvalidInputError(f"texts must be a list of str, got {type(texts).__name__}")
    if task == "type":
        if isinstance(entities, str | bytes) or not isinstance(entities, Sequence):
            raise InvalidInputError(
                f"entities must be one list of entities per text, got {type(entities).__name__}"
            )
        if len(entities) != len(texts):
            raise InvalidInputError(
                f"entities has {len(entities)} lists for {len(texts)} texts: one list per text"
            )
    if task in ("ner", "type"):
        check_labels(labels)  # shared by every item: one error, not one per item
    check_min_score(min_score)
    requests: list[InferenceRequest | InvalidInputError] = []
    for index, text in enumerate(texts):
        try:
            item_entities = entities[index] if task == "type" else ()  # type: ignore[index]
            requests.append(make_request(task, text, labels, item_entities, min_score))
        except InvalidInputError as error:
            requests.append(InvalidInputError(f"texts[{index}]: {error.message}"))
    return requests


@functools.cache
def _trace_injector() -> Any:
    """Return OpenTelemetry's ``propagate.inject``, or None when it is not installed."""
    try:
        from opentelemetry import propagate
    except ImportError:
        return None
    return propagate.inject


def call_metadata(static: Mapping[str, str] | None) -> dict[str, str] | None:
    """Return the gRPC metadata of one call: the client's own plus the caller's trace context.

    With OpenTelemetry installed (the ``otel`` extra) and a span active in the calling
    context, its W3C trace context (``traceparent``, ``tracestate``) travels with the call, so
    the server's work shows up in the application's traces; otherwise nothing is added.
    """
    headers = dict(static or {})
    inject = _trace_injector()
    if inject is not None:
        inject(headers)
    return headers or None


class Attempts:
    """The retry policy of one call, as a state machine: no waiting, no I/O.

    ``timeout()`` is the budget of the next attempt; after a failed attempt
    ``delay_after(error)`` returns how long to wait before the next one, or raises the error
    to give the caller (with the attempt count and the call's timeout in its message).
    """

    def __init__(self, policy: RetryPolicy, timeout: float) -> None:
        self._policy = policy
        self._timeout = timeout
        self._deadline = Deadline(timeout)
        self._attempt = 0

    def timeout(self) -> float:
        """Start an attempt and return the seconds it may take (never 0: gRPC's "no limit")."""
        self._attempt += 1
        return self._deadline.remaining() or 1e-3

    def delay_after(self, error: InstructNERError) -> float:
        """Return the wait before the next attempt, or raise the call's final error."""
        delay = retry_delay(error, self._attempt, self._policy, self._deadline)
        if delay is None:
            raise final_error(error, self._attempt, self._timeout) from error.__cause__
        logger.info("%s; retrying in %.2f s", error, delay)
        return delay


class ClientCore:
    """What a client is before it does I/O: validated settings, and each call's arguments.

    The transports (``_sync_io``, ``_async_io``) subclass it and open the channel in
    :meth:`_open`.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        model_name: str = DEFAULT_MODEL,
        model_version: str | int = "",
        timeout: float = DEFAULT_TIMEOUT,
        tls: TLSConfig | None = None,
        metadata: Mapping[str, str] | None = None,
        max_message_bytes: int | None = None,
        keepalive: Keepalive | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        """Validate every argument (before connecting); see the client classes."""
        self._settings = make_settings(
            url,
            model_name=model_name,
            model_version=model_version,
            timeout=timeout,
            tls=tls,
            metadata=metadata,
            max_message_bytes=max_message_bytes,
            keepalive=keepalive,
            retry=retry,
            max_concurrency=max_concurrency,
        )
        self._closed = False
        self._open()

    def _open(self) -> None:
        """Open the channel now, or prepare to open it on the first call."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The ``host:port`` this client talks to."""
        return self._settings.channel.url

    @property
    def model_name(self) -> str:
        """The model this client calls."""
        return self._settings.model_name

    def _check_open(self) -> None:
        if self._closed:
            raise InstructNERError(f"the client of {self._settings.target} is closed")

    def _timeout(self, timeout: object) -> float:
        return call_timeout(timeout, self._settings.channel.timeout)

    def _batch_call(
        self,
        requests: Sequence[InferenceRequest | InvalidInputError],
        timeout: float | None,
        max_concurrency: int | None,
        return_exceptions: bool,
        on_done: OnDone | None,
    ) -> BatchCall:
        """Check a batch call's arguments and that the client is open.

        The first invalid item is raised, unless the caller wants errors in their slots.
        """
        seconds = self._timeout(timeout)
        chosen = self._settings.max_concurrency if max_concurrency is None else max_concurrency
        concurrency = check_concurrency(chosen)
        self._check_open()
        if not return_exceptions:
            for item in requests:
                if isinstance(item, InvalidInputError):
                    raise item
        return BatchCall(requests, seconds, concurrency, return_exceptions, on_done)

    def _attempts(self, timeout: float) -> Attempts:
        return Attempts(self._settings.retry, timeout)

    def _infer_arguments(self, request: InferenceRequest, seconds: float) -> dict[str, Any]:
        """Return the keyword arguments of tritonclient's ``infer`` for one attempt."""
        return {
            "model_name": self._settings.model_name,
            "inputs": encode_request(request),
            "model_version": self._settings.model_version,
            "outputs": requested_outputs(),
            "client_timeout": seconds,
            "headers": call_metadata(self._settings.channel.metadata),
        }

    def _model_arguments(self, seconds: float) -> dict[str, Any]:
        """Return the keyword arguments of tritonclient's model config and ready calls."""
        return {
            "model_name": self._settings.model_name,
            "model_version": self._settings.model_version,
            "headers": call_metadata(self._settings.channel.metadata),
            "client_timeout": seconds,
        }

    def _mapped(self, raw: Exception) -> InstructNERError:
        return map_error(raw, target=self._settings.target)

    def _not_ready(self, raw: Exception) -> InstructNERError | None:
        """Return None when a readiness probe's failure means "not ready", else the error."""
        error = self._mapped(raw)
        if isinstance(error, ServerUnavailableError | ModelNotReadyError | DeadlineExceededError):
            logger.debug("not ready: %s", error)
            return None
        return error


@dataclass(frozen=True)
class BatchCall:
    """One batch call, checked and ready to send: what a transport's ``_batch`` runs."""

    requests: Sequence[InferenceRequest | InvalidInputError]  # an invalid item keeps its slot
    seconds: float  # deadline of each request
    concurrency: int  # requests in flight at once
    return_exceptions: bool  # a failed item's error goes into its slot instead of raising
    on_done: OnDone | None  # called with the index of each finished item
