"""The error a single bad request gets: Triton's INVALID_ARG with the input named."""

from __future__ import annotations

# A status message travels in gRPC metadata, which clients refuse past 16 KiB (the call then
# ends as "Stream removed" instead of INVALID_ARGUMENT). Whatever a caller sent, a message
# built here stays well under that.
MAX_MESSAGE_CHARS = 1000


def bounded_message(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Return ``message``, cut to ``limit`` characters with a note when it is longer."""
    if len(message) <= limit:
        return message
    keep = limit - 40  # room for the note
    return f"{message[:keep]}... ({len(message) - keep} more characters)"


class RequestError(ValueError):
    """A request input is missing, malformed or over a documented limit.

    The Triton models answer it with ``TritonError(str(error), TritonError.INVALID_ARG)``;
    the other requests of the same batch are served as usual. The message names the input
    and says what was expected.
    """

    def __init__(self, input_name: str, message: str) -> None:
        super().__init__(bounded_message(f"{input_name[:64]}: {message}"))
        self.input_name = input_name
