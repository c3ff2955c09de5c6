"""The asyncio client: the same calls as the blocking client, as coroutines."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, overload

import grpc
import tritonclient.grpc.aio as triton_aio
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
from ._sync import OnDone
from ._types import Entity, Extraction, ModelInfo, TypedEntity
from ._validation import InferenceRequest, Task, make_request

__all__ = ["AsyncInstructNERClient"]

logger = logging.getLogger("instructner_client")


class AsyncInstructNERClient:
    """asyncio gRPC client of the ``instruction_ner`` model; mirrors :class:`InstructNERClient`.

    The channel is opened on the first call, inside the running event loop. Use it as an
    async context manager or await :meth:`close`. The arguments are those of
    :class:`InstructNERClient`.
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
        self._triton: triton_aio.InferenceServerClient | None = None
        self._closed = False

    @property
    def url(self) -> str:
        """The ``host:port`` this client talks to."""
        return self._settings.channel.url

    @property
    def model_name(self) -> str:
        """The model this client calls."""
        return self._settings.model_name

    async def __aenter__(self) -> AsyncInstructNERClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; later calls raise :class:`InstructNERError`."""
        self._closed = True
        if self._triton is not None:
            triton, self._triton = self._triton, None
            await triton.close()

    def _client(self) -> triton_aio.InferenceServerClient:
        if self._closed:
            raise InstructNERError(f"the client of {self._settings.target} is closed")
        if self._triton is None:
            channel = self._settings.channel
            self._triton = triton_aio.InferenceServerClient(
                channel.url, creds=channel.credentials, channel_args=channel.channel_args
            )
        return self._triton

    async def ner(
        self,
        text: str,
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
    ) -> list[TypedEntity]:
        """Find the entities of ``text`` typed with ``labels``; see ``InstructNERClient.ner``."""
        return typed(
            (
                await self.analyze("ner", text, labels=labels, timeout=timeout, min_score=min_score)
            ).entities
        )

    async def extract(
        self, text: str, *, timeout: float | None = None, min_score: float = 0.0
    ) -> list[Entity]:
        """Find the entity spans of ``text`` without types (``label`` is None)."""
        return list(
            (await self.analyze("extract", text, timeout=timeout, min_score=min_score)).entities
        )

    async def type(
        self,
        text: str,
        entities: Sequence[str],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
    ) -> list[TypedEntity]:
        """Type the given entity words of ``text`` with one of ``labels`` each."""
        result = await self.analyze(
            "type",
            text,
            labels=labels,
            entities=entities,
            timeout=timeout,
            min_score=min_score,
        )
        return typed(result.entities)

    async def analyze(
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
        return await self._infer(request, call_timeout(timeout, self._settings.channel.timeout))

    @overload
    async def ner_batch(
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
    async def ner_batch(
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

    async def ner_batch(
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
        """Run :meth:`ner` over many texts concurrently; see ``InstructNERClient.ner_batch``."""
        return entity_lists(
            await self._batch(
                batch_requests("ner", texts, labels, min_score=min_score),
                timeout,
                max_concurrency,
                return_exceptions,
                on_done,
            )
        )

    @overload
    async def extract_batch(
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
    async def extract_batch(
        self,
        texts: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: Literal[True],
        on_done: OnDone | None = None,
    ) -> list[list[Entity] | InstructNERError]: ...

    async def extract_batch(
        self,
        texts: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        on_done: OnDone | None = None,
    ) -> list[Any]:
        """Run :meth:`extract` over many texts concurrently."""
        return entity_lists(
            await self._batch(
                batch_requests("extract", texts, min_score=min_score),
                timeout,
                max_concurrency,
                return_exceptions,
                on_done,
            )
        )

    @overload
    async def type_batch(
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
    async def type_batch(
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

    async def type_batch(
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
            await self._batch(
                batch_requests("type", texts, labels, entities, min_score),
                timeout,
                max_concurrency,
                return_exceptions,
                on_done,
            )
        )

    @overload
    async def analyze_batch(
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
    async def analyze_batch(
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

    async def analyze_batch(
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
        return await self._batch(
            batch_requests(task, texts, labels, entities, min_score),
            timeout,
            max_concurrency,
            return_exceptions,
            on_done,
        )

    async def analyze_document(
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
        results = await self._batch(list(requests), timeout, max_concurrency, False, None)
        return merge_parts(task, text, list(zip(offsets, results, strict=True)))

    async def ner_document(
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
            (
                await self.analyze_document(
                    "ner",
                    text,
                    labels=labels,
                    timeout=timeout,
                    min_score=min_score,
                    max_chars=max_chars,
                    max_concurrency=max_concurrency,
                )
            ).entities
        )

    async def extract_document(
        self,
        text: str,
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_chars: int = DEFAULT_PART_CHARS,
        max_concurrency: int | None = None,
    ) -> list[Entity]:
        """Run :meth:`extract` on a document of any length; see :meth:`analyze_document`."""
        result = await self.analyze_document(
            "extract",
            text,
            timeout=timeout,
            min_score=min_score,
            max_chars=max_chars,
            max_concurrency=max_concurrency,
        )
        return list(result.entities)

    async def model_info(self, *, timeout: float | None = None) -> ModelInfo:
        """Return what the served model knows: its tasks and its label words per corpus.

        One model-configuration call (the ``model_info`` parameter the build writes).

        Raises:
            InstructNERError: the server is unreachable, or publishes no model information.

        """
        seconds = call_timeout(timeout, self._settings.channel.timeout)
        triton = self._client()
        try:
            config = await triton.get_model_config(
                self._settings.model_name,
                self._settings.model_version,
                headers=call_metadata(self._settings.channel.metadata),
                as_json=True,
                client_timeout=seconds,
            )
        except (InferenceServerException, grpc.RpcError) as raw:
            raise map_error(raw, target=self._settings.target) from raw
        return decode_model_info(config, self._settings.model_name)

    async def is_ready(self, *, timeout: float | None = None) -> bool:
        """Return whether the server is reachable and the model ready; see the sync client."""
        seconds = call_timeout(timeout, self._settings.channel.timeout)
        triton = self._client()
        try:
            return bool(
                await triton.is_model_ready(
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

    async def _attempt(self, request: InferenceRequest, seconds: float) -> Extraction:
        triton = self._client()
        try:
            result = await triton.infer(
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

    async def _infer(self, request: InferenceRequest, timeout: float) -> Extraction:
        self._client()  # fail fast when closed
        deadline = Deadline(timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(request, deadline.remaining() or 1e-3)
            except InstructNERError as error:
                delay = retry_delay(error, attempt, self._settings.retry, deadline)
                if delay is None:
                    raise final_error(error, attempt, timeout) from error.__cause__
                logger.info("%s; retrying in %.2f s", error, delay)
                await asyncio.sleep(delay)

    async def _batch(
        self,
        requests: list[InferenceRequest | InvalidInputError],
        timeout: float | None,
        max_concurrency: int | None,
        return_exceptions: bool,
        on_done: OnDone | None,
    ) -> list[Any]:
        seconds = call_timeout(timeout, self._settings.channel.timeout)
        limit = check_concurrency(
            max_concurrency if max_concurrency is not None else self._settings.max_concurrency
        )
        self._client()
        if not return_exceptions:
            for item in requests:
                if isinstance(item, InvalidInputError):
                    raise item
        semaphore = asyncio.Semaphore(limit)
        results: list[Any] = [None] * len(requests)

        async def run(index: int, item: InferenceRequest | InvalidInputError) -> None:
            if isinstance(item, InvalidInputError):
                results[index] = item
            else:
                async with semaphore:
                    try:
                        results[index] = await self._infer(item, seconds)
                    except InstructNERError as error:
                        if not return_exceptions:
                            raise
                        results[index] = error
            if on_done is not None:
                on_done(index)

        tasks = [asyncio.ensure_future(run(i, item)) for i, item in enumerate(requests)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        return results
