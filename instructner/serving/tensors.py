"""Read Triton input tensors (numpy arrays) into plain Python values, checking their shapes.

Triton already rejects inputs whose shapes contradict the model config; these checks make the
core independent of that and give messages that name the input. Every request carries a
leading batch dimension (``max_batch_size > 0``): ``[batch, 1]`` for scalars per row,
``[batch, n]`` for lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from instructner.serving.errors import RequestError

# How every step reads a request: ``get(name)`` is the named input as numpy, None when absent.
GetInput = Callable[[str], "np.ndarray | None"]


def _decode(name: str, value: object, where: str) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes | np.bytes_):
        raise RequestError(name, f"{where} must be UTF-8 bytes, got {type(value).__name__}")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            name, f"{where} is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None


def batch_size(name: str, array: np.ndarray) -> int:
    """Return the batch size of a request input (its first dimension)."""
    if array.ndim == 0 or array.shape[0] < 1:
        raise RequestError(
            name, f"expected a batch dimension of at least 1, got shape {array.shape}"
        )
    return int(array.shape[0])


def _rows(name: str, array: np.ndarray, batch: int | None) -> int:
    size = batch_size(name, array)
    if batch is not None and size != batch:
        raise RequestError(name, f"has batch size {size}, but TEXT has {batch}")
    return size


def string_per_row(name: str, array: np.ndarray, batch: int | None = None) -> list[str]:
    """Return one string per row of a ``[batch, 1]`` BYTES input."""
    size = _rows(name, array, batch)
    if array.ndim != 2 or array.shape[1] != 1:
        raise RequestError(
            name, f"expected shape [batch, 1] (one string per row), got {list(array.shape)}"
        )
    return [_decode(name, array[row, 0], f"row {row}") for row in range(size)]


def strings_per_row(name: str, array: np.ndarray, batch: int | None = None) -> list[list[str]]:
    """Return the list of strings of each row of a ``[batch, n]`` BYTES input."""
    size = _rows(name, array, batch)
    if array.ndim != 2:
        raise RequestError(
            name, f"expected shape [batch, n] (a list of strings per row), got {list(array.shape)}"
        )
    return [
        [_decode(name, array[row, col], f"row {row} item {col}") for col in range(array.shape[1])]
        for row in range(size)
    ]


def spans_per_row(
    name: str, array: np.ndarray, batch: int | None = None
) -> list[list[tuple[int, int]]]:
    """Return the (start, end) pairs of each row of a ``[batch, n, 2]`` integer input."""
    _rows(name, array, batch)
    if array.ndim != 3 or array.shape[2] != 2:
        raise RequestError(
            name,
            f"expected shape [batch, n, 2] (a list of (start, end) pairs per row), "
            f"got {list(array.shape)}",
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise RequestError(name, f"expected INT64 or INT32 offsets, got dtype {array.dtype}")
    return [[(int(s), int(e)) for s, e in row] for row in array]


def _column(name: str, array: np.ndarray, batch: int | None, what: str) -> np.ndarray:
    """Return the values of a ``[batch, 1]`` input (one ``what`` per row) as a 1-D array."""
    _rows(name, array, batch)
    if array.ndim != 2 or array.shape[1] != 1:
        raise RequestError(
            name, f"expected shape [batch, 1] (one {what} per row), got {list(array.shape)}"
        )
    return array[:, 0]


def int_per_row(name: str, array: np.ndarray, batch: int | None = None) -> list[int]:
    """Return one integer per row of a ``[batch, 1]`` integer input."""
    column = _column(name, array, batch, "integer")
    if not np.issubdtype(array.dtype, np.integer):
        raise RequestError(name, f"expected integers, got dtype {array.dtype}")
    return [int(v) for v in column]


def bool_per_row(name: str, array: np.ndarray, batch: int | None = None) -> list[bool]:
    """Return one boolean per row of a ``[batch, 1]`` BOOL input."""
    column = _column(name, array, batch, "boolean")
    if array.dtype != np.bool_:
        raise RequestError(name, f"expected BOOL, got dtype {array.dtype}")
    return [bool(v) for v in column]


def float_per_row(name: str, array: np.ndarray, batch: int | None = None) -> list[float]:
    """Return one finite number per row of a ``[batch, 1]`` floating-point input."""
    column = _column(name, array, batch, "number")
    if not np.issubdtype(array.dtype, np.floating):
        raise RequestError(name, f"expected FP32, got dtype {array.dtype}")
    values = [float(v) for v in column]
    for row, value in enumerate(values):
        if not np.isfinite(value):
            raise RequestError(name, f"row {row} is {value}, expected a finite number")
    return values


def log_probs_per_row(
    name: str, array: np.ndarray, tokens_shape: tuple[int, ...], max_len: int
) -> np.ndarray:
    """Return beam 0 of a ``[batch, beams, len]`` FP32 input as ``[batch, len]`` float64.

    Batch and beams must be those of the token ids it belongs to (``tokens_shape``); its length
    may differ from theirs (an engine may pad log-probabilities to its own width) up to
    ``max_len``. Values are checked per row, over the tokens used (:func:`row_log_probs`).
    """
    if (
        array.ndim != 3
        or tuple(array.shape[:2]) != tuple(tokens_shape[:2])
        or array.shape[2] > max_len
    ):
        raise RequestError(
            name,
            f"expected shape [{tokens_shape[0]}, {tokens_shape[1]}, at most {max_len}] "
            f"(batch and beams of TOKENS_BATCH), got {list(array.shape)}",
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise RequestError(name, f"expected FP32, got dtype {array.dtype}")
    return np.asarray(array[:, 0, :], dtype=np.float64)


def row_log_probs(name: str, values: np.ndarray, row: int, length: int) -> list[float]:
    """Return the first ``length`` log-probabilities of one row, each finite and at most 0.

    Raises:
        RequestError: the row is shorter than ``length`` or holds another value.

    """
    if values.shape[0] < length:
        raise RequestError(name, f"row {row} holds {values.shape[0]} values for {length} tokens")
    used = values[:length]
    if not np.all(np.isfinite(used)) or np.any(used > 1e-3):  # float noise may round above 0
        raise RequestError(
            name, f"row {row}: every value must be a finite log-probability (at most 0)"
        )
    return [float(v) for v in used]


def string_tensor(values: Sequence[str]) -> np.ndarray:
    """Return a ``[len(values), 1]`` BYTES array (UTF-8) for a Triton output."""
    return np.array([[v.encode("utf-8")] for v in values], dtype=np.object_).reshape(len(values), 1)


def bytes_tensor(values: Sequence[bytes]) -> np.ndarray:
    """Return a ``[len(values), 1]`` BYTES array of raw bytes (serialized protos)."""
    out = np.empty((len(values), 1), dtype=np.object_)
    for row, value in enumerate(values):
        out[row, 0] = value
    return out


def int32_column(values: Sequence[int]) -> np.ndarray:
    """Return a ``[len(values), 1]`` INT32 array."""
    return np.array(values, dtype=np.int32).reshape(len(values), 1)
