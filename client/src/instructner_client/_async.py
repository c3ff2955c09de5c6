"""The asyncio client; the blocking client is written from this file.

``build_sync.py`` writes ``_sync.py`` (``InstructNERClient``) from this module at build time
(``async``/``await`` removed, names mapped), so both clients have one text of their public
methods; how each waits is in ``_async_io`` / ``_sync_io``, everything else in ``_core``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

from ._async_io import AsyncTransport
from ._codec import decode_model_info, typed
from ._core import OnDone, batch_requests, entity_lists
from ._document import DEFAULT_PART_CHARS, document_requests, merge_parts
from ._errors import InstructNERError
from ._types import Entity, Extraction, ModelInfo, TypedEntity
from ._validation import EntityRef, Task, make_request

__all__ = ["AsyncInstructNERClient"]


class AsyncInstructNERClient(AsyncTransport):
    """asyncio gRPC client of the ``instruction_ner`` model on a Triton server.

    One client (one channel) serves many concurrent calls. Use it as a context manager or
    call :meth:`close`; the channel is opened on the first call, inside the running event loop.

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

    async def ner(
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
        result = await self.analyze(
            "ner", text, labels=labels, timeout=timeout, min_score=min_score
        )
        return typed(result.entities)

    async def extract(
        self, text: str, *, timeout: float | None = None, min_score: float = 0.0
    ) -> list[Entity]:
        """Find the entity spans of ``text`` without typing them (``label`` is None)."""
        result = await self.analyze("extract", text, timeout=timeout, min_score=min_score)
        return list(result.entities)

    async def type(
        self,
        text: str,
        entities: Sequence[EntityRef],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
    ) -> list[TypedEntity]:
        """Type the given entities of ``text`` with one of ``labels`` each.

        Each entity is its words (``"Paris"``: wherever the model places it) or its
        ``(start, end)`` character span of ``text`` (which occurrence: ``(21, 26)`` is the
        second ``Paris`` of ``"Paris Hilton visited Paris"``); all as words or all as spans.
        A span out of range, with outer whitespace, cutting a word or overlapping another is
        refused (:class:`InvalidInputError`). Returned entities carry their spans' offsets.
        """
        result = await self.analyze(
            "type", text, labels=labels, entities=entities, timeout=timeout, min_score=min_score
        )
        return typed(result.entities)

    async def analyze(
        self,
        task: Task,
        text: str,
        *,
        labels: Sequence[str] = (),
        entities: Sequence[EntityRef] = (),
        timeout: float | None = None,
        min_score: float = 0.0,
    ) -> Extraction:
        """Run one task (``ner``, ``extract`` or ``type``) and return entities and raw answer."""
        request = make_request(task, text, labels, entities, min_score)
        return await self._infer(request, self._timeout(timeout))

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
            await self._batch(
                self._batch_call(
                    batch_requests("ner", texts, labels, min_score=min_score),
                    timeout,
                    max_concurrency,
                    return_exceptions,
                    on_done,
                )
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
        """Run :meth:`extract` over many texts; see :meth:`ner_batch`."""
        return entity_lists(
            await self._batch(
                self._batch_call(
                    batch_requests("extract", texts, min_score=min_score),
                    timeout,
                    max_concurrency,
                    return_exceptions,
                    on_done,
                )
            )
        )

    @overload
    async def type_batch(
        self,
        texts: Sequence[str],
        entities: Sequence[Sequence[EntityRef]],
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
        entities: Sequence[Sequence[EntityRef]],
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
        entities: Sequence[Sequence[EntityRef]],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        on_done: OnDone | None = None,
    ) -> list[Any]:
        """Run :meth:`type` over many texts, ``entities[i]`` being those of ``texts[i]``.

        Each list holds words or (start, end) spans of its text, as for :meth:`type`.
        """
        return entity_lists(
            await self._batch(
                self._batch_call(
                    batch_requests("type", texts, labels, entities, min_score),
                    timeout,
                    max_concurrency,
                    return_exceptions,
                    on_done,
                )
            )
        )

    @overload
    async def analyze_batch(
        self,
        task: Task,
        texts: Sequence[str],
        *,
        labels: Sequence[str] = (),
        entities: Sequence[Sequence[EntityRef]] = (),
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
        entities: Sequence[Sequence[EntityRef]] = (),
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
        entities: Sequence[Sequence[EntityRef]] = (),
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
            self._batch_call(
                batch_requests(task, texts, labels, entities, min_score),
                timeout,
                max_concurrency,
                return_exceptions,
                on_done,
            )
        )

    async def analyze_document(
        self,
        task: Task,
        text: str,
        *,
        labels: Sequence[str] = (),
        entities: Sequence[EntityRef] = (),
        timeout: float | None = None,
        min_score: float = 0.0,
        max_chars: int = DEFAULT_PART_CHARS,
        max_concurrency: int | None = None,
        on_parts: Callable[[int], None] | None = None,
        on_done: OnDone | None = None,
    ) -> Extraction:
        """Run one task on a document of any length; offsets index the whole document.

        The document is split into parts of at most ``max_chars`` characters (the server's
        limit, 20,000 by default) at blank lines, line breaks, sentence ends or whitespace,
        never inside a word; the parts are sent concurrently and their results merged. An
        entity that would span a split point is not found. For progress bars, ``on_parts``
        gets the number of parts before any is sent and ``on_done`` each finished part's
        index.
        """
        offsets, requests = document_requests(task, text, labels, entities, min_score, max_chars)
        if on_parts is not None:
            on_parts(len(requests))
        call = self._batch_call(list(requests), timeout, max_concurrency, False, on_done)
        results = await self._batch(call)
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
        result = await self.analyze_document(
            "ner",
            text,
            labels=labels,
            timeout=timeout,
            min_score=min_score,
            max_chars=max_chars,
            max_concurrency=max_concurrency,
        )
        return typed(result.entities)

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

    async def type_document(
        self,
        text: str,
        entities: Sequence[EntityRef],
        labels: Sequence[str],
        *,
        timeout: float | None = None,
        min_score: float = 0.0,
        max_chars: int = DEFAULT_PART_CHARS,
        max_concurrency: int | None = None,
    ) -> list[TypedEntity]:
        """Run :meth:`type` on a document of any length; see :meth:`analyze_document`.

        Spans are offsets into the whole document; no part boundary falls inside one.
        """
        result = await self.analyze_document(
            "type",
            text,
            labels=labels,
            entities=entities,
            timeout=timeout,
            min_score=min_score,
            max_chars=max_chars,
            max_concurrency=max_concurrency,
        )
        return typed(result.entities)

    async def model_info(self, *, timeout: float | None = None) -> ModelInfo:
        """Return what the served model knows: its tasks and its label words per corpus.

        One model-configuration call (the ``model_info`` parameter the build writes).

        Raises:
            InstructNERError: the server is unreachable, or publishes no model information.

        """
        config = await self._model_config(self._timeout(timeout))
        return decode_model_info(config, self._settings.model_name)

    async def is_ready(self, *, timeout: float | None = None) -> bool:
        """Return whether the server is reachable and the model is ready to answer.

        An unreachable server, an unknown or loading model and a timeout all answer False
        (no retries: this is a probe); other failures raise :class:`InstructNERError`.
        """
        return await self._model_ready(self._timeout(timeout))
