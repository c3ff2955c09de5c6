"""How the asyncio client waits: a channel opened in the running loop, tasks, asyncio.sleep."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self

import grpc
import tritonclient.grpc.aio as triton_aio
from tritonclient.utils import InferenceServerException

from ._codec import RESULT_OUTPUT, decode_result
from ._core import BatchCall, ClientCore
from ._errors import InstructNERError, InvalidInputError
from ._types import Extraction
from ._validation import InferenceRequest

TRANSPORT_ERRORS = (InferenceServerException, grpc.RpcError)


class AsyncTransport(ClientCore):
    """The asyncio I/O under :class:`AsyncInstructNERClient`.

    The channel is opened on the first call, inside the running event loop.
    """

    def _open(self) -> None:
        self._triton: triton_aio.InferenceServerClient | None = None

    async def __aenter__(self) -> Self:
        self._check_open()
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
        self._check_open()
        if self._triton is None:
            channel = self._settings.channel
            self._triton = triton_aio.InferenceServerClient(
                channel.url, creds=channel.credentials, channel_args=channel.channel_args
            )
        return self._triton

    async def _model_config(self, seconds: float) -> Any:
        triton = self._client()
        try:
            return await triton.get_model_config(**self._model_arguments(seconds), as_json=True)
        except TRANSPORT_ERRORS as raw:
            raise self._mapped(raw) from raw

    async def _model_ready(self, seconds: float) -> bool:
        triton = self._client()
        try:
            return bool(await triton.is_model_ready(**self._model_arguments(seconds)))
        except TRANSPORT_ERRORS as raw:
            error = self._not_ready(raw)
            if error is None:
                return False
            raise error from raw

    async def _attempt(self, request: InferenceRequest, seconds: float) -> Extraction:
        triton = self._client()
        try:
            result = await triton.infer(**self._infer_arguments(request, seconds))
        except TRANSPORT_ERRORS as raw:
            raise self._mapped(raw) from raw
        return decode_result(result.as_numpy(RESULT_OUTPUT), request)

    async def _infer(self, request: InferenceRequest, timeout: float) -> Extraction:
        self._client()  # fail fast when closed
        attempts = self._attempts(timeout)
        while True:
            try:
                return await self._attempt(request, attempts.timeout())
            except InstructNERError as error:
                await asyncio.sleep(attempts.delay_after(error))

    async def _batch(self, call: BatchCall) -> list[Any]:
        self._client()  # opens the channel inside the running loop
        semaphore = asyncio.Semaphore(call.concurrency)
        requests, on_done = call.requests, call.on_done
        results: list[Any] = [None] * len(requests)

        async def run(index: int, item: InferenceRequest | InvalidInputError) -> None:
            if isinstance(item, InvalidInputError):
                results[index] = item
            else:
                async with semaphore:
                    try:
                        results[index] = await self._infer(item, call.seconds)
                    except InstructNERError as error:
                        if not call.return_exceptions:
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
