"""How the blocking client waits: a channel opened at once, threads, ``time.sleep``."""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from types import TracebackType
from typing import Any, Self

import grpc
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from ._codec import RESULT_OUTPUT, decode_result
from ._core import BatchCall, ClientCore, OnDone
from ._errors import InstructNERError, InvalidInputError
from ._types import Extraction
from ._validation import InferenceRequest

TRANSPORT_ERRORS = (InferenceServerException, grpc.RpcError)


class SyncTransport(ClientCore):
    """The blocking I/O under :class:`InstructNERClient`; thread-safe (one channel)."""

    def _open(self) -> None:
        channel = self._settings.channel
        self._triton = triton_grpc.InferenceServerClient(
            channel.url, creds=channel.credentials, channel_args=channel.channel_args
        )

    def __enter__(self) -> Self:
        self._check_open()
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

    def _model_config(self, seconds: float) -> Any:
        self._check_open()
        try:
            return self._triton.get_model_config(**self._model_arguments(seconds), as_json=True)
        except TRANSPORT_ERRORS as raw:
            raise self._mapped(raw) from raw

    def _model_ready(self, seconds: float) -> bool:
        self._check_open()
        try:
            return bool(self._triton.is_model_ready(**self._model_arguments(seconds)))
        except TRANSPORT_ERRORS as raw:
            error = self._not_ready(raw)
            if error is None:
                return False
            raise error from raw

    def _attempt(self, request: InferenceRequest, seconds: float) -> Extraction:
        try:
            result = self._triton.infer(**self._infer_arguments(request, seconds))
        except TRANSPORT_ERRORS as raw:
            raise self._mapped(raw) from raw
        return decode_result(result.as_numpy(RESULT_OUTPUT), request)

    def _infer(self, request: InferenceRequest, timeout: float) -> Extraction:
        self._check_open()
        attempts = self._attempts(timeout)
        while True:
            try:
                return self._attempt(request, attempts.timeout())
            except InstructNERError as error:
                time.sleep(attempts.delay_after(error))

    def _batch(self, call: BatchCall) -> list[Any]:
        requests = call.requests
        on_done = call.on_done
        results: list[Any] = [None] * len(requests)
        pending: dict[Future[Extraction], int] = {}
        with ThreadPoolExecutor(call.concurrency, thread_name_prefix="instructner") as pool:
            for index, item in enumerate(requests):
                if isinstance(item, InvalidInputError):
                    results[index] = item
                    if on_done is not None:
                        on_done(index)
                else:
                    # each worker runs in the caller's context (its trace span)
                    context = contextvars.copy_context()
                    pending[pool.submit(context.run, self._infer, item, call.seconds)] = index
            try:
                _collect(pending, results, call.return_exceptions, on_done)
            finally:
                for future in pending:
                    future.cancel()
        return results


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
