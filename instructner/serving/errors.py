"""The error a single bad request gets: Triton's INVALID_ARG with the input named."""

from __future__ import annotations


class RequestError(ValueError):
    """A request input is missing, malformed or over a documented limit.

    The Triton models answer it with ``TritonError(str(error), TritonError.INVALID_ARG)``;
    the other requests of the same batch are served as usual. The message names the input
    and says what was expected.
    """

    def __init__(self, input_name: str, message: str) -> None:
        super().__init__(f"{input_name}: {message}")
        self.input_name = input_name
