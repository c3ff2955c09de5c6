"""The blocking client."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from types import TracebackType
from typing import Any, Literal, overload

import grpc
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from ._base import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    Deadline,
    batch_requests,
    call_metadata,
    call_timeout,
    check_concurrency,
    entity_lists,
    final_error,
    make_settings,
    retry_delay,
)
from ._codec import (
    RESULT_OUTPUT,
    decode_model_info,
    decode_result,
    encode_request,
    requested_outputs,
    typed,
)
from ._document import DEFAULT_PART_CHARS, document_requests, merge_parts
from ._errors import (
    DeadlineExceededError,
    InstructNERError,
    InvalidInputError,
    ModelNotReadyError,
    ServerUnavailableError,
    map_error,
)
from ._options import Keepalive, RetryPolicy, TLSConfig
from ._types import Entity, Extraction, ModelInfo, TypedEntity
from ._validation import InferenceRequest, Task, make_request

__all__ = ["InstructNERClient"]

logger = logging.getLogger("instructner_client")

OnDone = Callable[[int], None]


class InstructNERClient:
    """Blocking gRPC client of the ``instruction_ner`` model on a Triton server.

    Thread-safe: one client (one channel) can serve many threads. Use it as a context manager
    or call :meth:`close`.

    Args:
        url: ``host:port`` of Triton's gRPC endpoint.
        model_name: the model to call.
        model_version: ``""`` for the latest ready version, or a version number.
        timeout: default deadline of every call in seconds, retries included; each call can
            override it.
        tls: TLS settings; ``None`` for a plaintext channel.
        metadata: extra gRPC metadata sent with every call (an auth header behind a gateway).
        max_message_bytes: largest message sent or received.
        keepalive: HTTP/2 keepalive pings; ``None`` sends none.
        retry: backoff for calls that found the server unavailable.
        max_concurrency: requests in flight at once in the ``*_batch`` calls.

    Raises:
        InvalidInputError: when an argument is not usable (checked before connecting).

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
        channel = self._settings.channel
        self._triton = triton_grpc.InferenceServerClient(
            channel.url, creds=channel.credentials, channel_args=channel.channel_args
        )
        self._closed = False

    @property
    def url(self) -> str:
        """The ``host:port`` this client talks to."""
        return self._settings.channel.url

    @property
    def model_name(self) -> str:
        """The model this client calls."""
        return self._settings.model_name

    def __enter__(self) -> InstructNERClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; later calls raise :class:`InstructNERError`."""
        if not self._closed:
            self._closed = True
            self._triton.close()

    def ner(
        self,
        text: str,
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
    ) -> list[TypedEntity]:
        """Find the entities of ``text`` whose type is one of the label words ``labels``.

        ``min_score`` (0 to 1) drops the entities the model scored below it; the others keep
        their order. Every entity carries its ``score``.

        Returns:
            The entities in text order; ``label`` is one of ``labels`` as passed.

        Raises:
            InvalidInputError: bad arguments, or the server rejected the input.
            ServerUnavailableError: the server could not be reached (after retries).
            DeadlineExceededError: no answer within the timeout.
            ModelNotReadyError: the model is not loaded.
            InstructNERError: any other failure.

        """
        return typed(
            self.analyze("ner", text, labels=labels, timeout=timeout, min_score=min_score).entities
        )

    def extract(
        self, text: str, *, timeout: float | None = None, min_score: float = 0.0
    ) -> list[Entity]:
        """Find the entity spans of ``text`` without typing them (``label`` is None)."""
        return list(self.analyze("extract", text, timeout=timeout, min_score=min_score).entities)

    def type(
        self,
        text: str,
        entities: Sequence[str],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
    ) -> list[TypedEntity]:
        """Type the given entity words of ``text`` with one of ``labels`` each."""
        return typed(
            self.analyze(
                "type",
                text,
                labels=labels,
                entities=entities,
                timeout=timeout,
                min_score=min_score,
            ).entities
        )

    def analyze(
        self,
        task: Task,
        text: str,
        *,
        labels: Sequence[str] = (),
        entities: Sequence[str] = (),
        timeout: float | None = None,
        min_score: float = 0.0,
    ) -> Extraction:
        """Run one task (``ner``, ``extract`` or ``type``) and return entities and raw answer."""
        request = make_request(task, text, labels, entities, min_score)
        return self._infer(request, call_timeout(timeout, self._settings.channel.timeout))

    @overload
    def ner_batch(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
        on_done: OnDone | None = None,
    ) -> list[list[TypedEntity]]: ...

    @overload
    def ner_batch(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: Literal[True],
        on_done: OnDone | None = None,
    ) -> list[list[TypedEntity] | InstructNERError]: ...

    def ner_batch(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        on_done: OnDone | None = None,
    ) -> list[Any]:
        """Run :meth:`ner` over many texts with concurrent requests; results keep input order.

        Every text is validated before anything is sent. ``timeout`` applies to each request.

        Args:
            texts: the texts.
            labels: label words shared by all texts.
            timeout: deadline of each request.
            min_score: drop entities the model scored below this (0 to 1; 0 keeps all).
            max_concurrency: requests in flight at once (default: the client's).
            return_exceptions: put each failed item's :class:`InstructNERError` in its slot
                instead of raising the first failure.
            on_done: called with the index of each finished item (for progress bars).

        Returns:
            One ``list[Entity]`` per text (or an exception, with ``return_exceptions``).

        """
        return entity_lists(
            self._batch(
                batch_requests("ner", texts, labels, min_score=min_score),
                timeout,
                max_concurrency,
                return_exceptions,
                on_done,
            )
        )

    @overload
    def extract_batch(
        self,
        texts: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
        on_done: OnDone | None = None,
    ) -> list[list[Entity]]: ...

    @overload
    def extract_batch(
        self,
        texts: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: Literal[True],
        on_done: OnDone | None = None,
    ) -> list[list[Entity] | InstructNERError]: ...

    def extract_batch(
        self,
        texts: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        on_done: OnDone | None = None,
    ) -> list[Any]:
        """Run :meth:`extract` over many texts; see :meth:`ner_batch`."""
        return entity_lists(
            self._batch(
                batch_requests("extract", texts, min_score=min_score),
                timeout,
                max_concurrency,
                return_exceptions,
                on_done,
            )
        )

    @overload
    def type_batch(
        self,
        texts: Sequence[str],
        entities: Sequence[Sequence[str]],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
        on_done: OnDone | None = None,
    ) -> list[list[TypedEntity]]: ...

    @overload
    def type_batch(
        self,
        texts: Sequence[str],
        entities: Sequence[Sequence[str]],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: Literal[True],
        on_done: OnDone | None = None,
    ) -> list[list[TypedEntity] | InstructNERError]: ...

    def type_batch(
        self,
        texts: Sequence[str],
        entities: Sequence[Sequence[str]],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        on_done: OnDone | None = None,
    ) -> list[Any]:
        """Run :meth:`type` over many texts, ``entities[i]`` being the words of ``texts[i]``."""
        return entity_lists(
            self._batch(
                batch_requests("type", texts, labels, entities, min_score),
                timeout,
                max_concurrency,
                return_exceptions,
                on_done,
            )
        )

    @overload
    def analyze_batch(
        self,
        task: Task,
        texts: Sequence[str],
        *,
        labels: Sequence[str] = (),
        entities: Sequence[Sequence[str]] = (),
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
        on_done: OnDone | None = None,
    ) -> list[Extraction]: ...

    @overload
    def analyze_batch(
        self,
        task: Task,
        texts: Sequence[str],
        *,
        labels: Sequence[str] = (),
        entities: Sequence[Sequence[str]] = (),
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: Literal[True],
        on_done: OnDone | None = None,
    ) -> list[Extraction | InstructNERError]: ...

    def analyze_batch(
        self,
        task: Task,
        texts: Sequence[str],
        *,
        labels: Sequence[str] = (),
        entities: Sequence[Sequence[str]] = (),
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        on_done: OnDone | None = None,
    ) -> list[Any]:
        """Run one task over many texts; one :class:`Extraction` per text, in input order.

        ``entities[i]`` are the entity words of ``texts[i]`` for the type task. The other
        arguments are those of :meth:`ner_batch`.
        """
        return self._batch(
            batch_requests(task, texts, labels, entities, min_score),
            timeout,
            max_concurrency,
            return_exceptions,
            on_done,
        )

    def analyze_document(
        self,
        task: Task,
        text: str,
        *,
        labels: Sequence[str] = (),
        entities: Sequence[str] = (),
        timeout: float | None = None,
        min_score: float = 0.0,
        max_chars: int = DEFAULT_PART_CHARS,
        max_concurrency: int | None = None,
    ) -> Extraction:
        """Run one task on a document of any length; offsets index the whole document.

        The document is split into parts of at most ``max_chars`` characters (the server's
        limit, 20,000 by default) at blank lines, line breaks, sentence ends or whitespace,
        never inside a word; the parts are sent concurrently and their results merged. An
        entity that would span a split point is not found.
        """
        offsets, requests = document_requests(task, text, labels, entities, min_score, max_chars)
        results = self._batch(list(requests), timeout, max_concurrency, False, None)
        return merge_parts(task, text, list(zip(offsets, results, strict=True)))

    def ner_document(
        self,
        text: str,
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_chars: int = DEFAULT_PART_CHARS,
        max_concurrency: int | None = None,
    ) -> list[TypedEntity]:
        """Run :meth:`ner` on a document of any length; see :meth:`analyze_document`."""
        return typed(
            self.analyze_document(
                "ner",
                text,
                labels=labels,
                timeout=timeout,
                min_score=min_score,
                max_chars=max_chars,
                max_concurrency=max_concurrency,
            ).entities
        )

    def extract_document(
        self,
        text: str,
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_chars: int = DEFAULT_PART_CHARS,
        max_concurrency: int | None = None,
    ) -> list[Entity]:
        """Run :meth:`extract` on a document of any length; see :meth:`analyze_document`."""
        result = self.analyze_document(
            "extract",
            text,
            timeout=timeout,
            min_score=min_score,
            max_chars=max_chars,
            max_concurrency=max_concurrency,
        )
        return list(result.entities)

    def model_info(self, *, timeout: float | None = None) -> ModelInfo:
        """Return what the served model knows: its tasks and its label words per corpus.

        One model-configuration call (the ``model_info`` parameter the build writes).

        Raises:
            InstructNERError: the server is unreachable, or publishes no model information.

        """
        seconds = call_timeout(timeout, self._settings.channel.timeout)
        self._check_open()
        try:
            config = self._triton.get_model_config(
                self._settings.model_name,
                self._settings.model_version,
                headers=call_metadata(self._settings.channel.metadata),
                as_json=True,
                client_timeout=seconds,
            )
        except (InferenceServerException, grpc.RpcError) as raw:
            raise map_error(raw, target=self._settings.target) from raw
        return decode_model_info(config, self._settings.model_name)

    def is_ready(self, *, timeout: float | None = None) -> bool:
        """Return whether the server is reachable and the model is ready to answer.

        An unreachable server, an unknown or loading model and a timeout all answer False
        (no retries: this is a probe); other failures raise :class:`InstructNERError`.
        """
        seconds = call_timeout(timeout, self._settings.channel.timeout)
        self._check_open()
        try:
            return bool(
                self._triton.is_model_ready(
                    self._settings.model_name,
                    self._settings.model_version,
                    headers=call_metadata(self._settings.channel.metadata),
                    client_timeout=seconds,
                )
            )
        except (InferenceServerException, grpc.RpcError) as raw:
            error = map_error(raw, target=self._settings.target)
            if isinstance(
                error, ServerUnavailableError | ModelNotReadyError | DeadlineExceededError
            ):
                logger.debug("not ready: %s", error)
                return False
            raise error from raw

    def _check_open(self) -> None:
        if self._closed:
            raise InstructNERError(f"the client of {self._settings.target} is closed")

    def _attempt(self, request: InferenceRequest, seconds: float) -> Extraction:
        try:
            result = self._triton.infer(
                self._settings.model_name,
                encode_request(request),
                model_version=self._settings.model_version,
                outputs=requested_outputs(),
                client_timeout=seconds,
                headers=call_metadata(self._settings.channel.metadata),
            )
        except (InferenceServerException, grpc.RpcError) as raw:
            raise map_error(raw, target=self._settings.target) from raw
        return decode_result(result.as_numpy(RESULT_OUTPUT), request)

    def _infer(self, request: InferenceRequest, timeout: float) -> Extraction:
        self._check_open()
        deadline = Deadline(timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(request, deadline.remaining() or 1e-3)
            except InstructNERError as error:
                delay = retry_delay(error, attempt, self._settings.retry, deadline)
                if delay is None:
                    raise final_error(error, attempt, timeout) from error.__cause__
                logger.info("%s; retrying in %.2f s", error, delay)
                time.sleep(delay)

    def _batch(
        self,
        requests: list[InferenceRequest | InvalidInputError],
        timeout: float | None,
        max_concurrency: int | None,
        return_exceptions: bool,
        on_done: OnDone | None,
    ) -> list[Any]:
        seconds = call_timeout(timeout, self._settings.channel.timeout)
        workers = check_concurrency(
            max_concurrency if max_concurrency is not None else self._settings.max_concurrency
        )
        self._check_open()
        if not return_exceptions:
            for item in requests:
                if isinstance(item, InvalidInputError):
                    raise item
        results: list[Any] = [None] * len(requests)
        pending: dict[Future[Extraction], int] = {}
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="instructner") as pool:
            for index, item in enumerate(requests):
                if isinstance(item, InvalidInputError):
                    results[index] = item
                    if on_done is not None:
                        on_done(index)
                else:
                    # each worker runs in the caller's context (its trace span)
                    context = contextvars.copy_context()
                    pending[pool.submit(context.run, self._infer, item, seconds)] = index
            try:
                self._collect(pending, results, return_exceptions, on_done)
            finally:
                for future in pending:
                    future.cancel()
        return results

    @staticmethod
    def _collect(
        pending: dict[Future[Extraction], int],
        results: list[Any],
        return_exceptions: bool,
        on_done: OnDone | None,
    ) -> None:
        for future in as_completed(pending):
            index = pending[future]
            error = future.exception()
            if error is None:
                results[index] = future.result()
            elif return_exceptions and isinstance(error, InstructNERError):
                results[index] = error
            else:
                raise error
            if on_done is not None:
                on_done(index)
