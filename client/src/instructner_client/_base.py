"""What the sync and the asyncio client share: settings, retry decisions, batch validation."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import (
    DeadlineExceededError,
    InstructNERError,
    InvalidInputError,
    ServerUnavailableError,
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

__all__ = ["DEFAULT_MODEL", "ClientSettings", "Deadline", "make_settings", "retry_delay"]

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

    ``entities`` is, for the type task, one list of entity words per text.
    """
    if task not in TASKS:
        raise InvalidInputError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InvalidInputError(f"texts must be a list of str, got {type(texts).__name__}")
    if task == "type":
        if isinstance(entities, str | bytes) or not isinstance(entities, Sequence):
            raise InvalidInputError(
                f"entities must be one list of entity words per text, got {type(entities).__name__}"
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
