"""Where the CTranslate2 engine runs, and which compute type it may use there.

CPU: ``int8`` (the served default) or ``float32``. CUDA: the compute types CTranslate2 4.8
runs on a GPU, by compute capability (its ``src/types.cc`` and ``src/cuda/utils.cc``):
``float32`` everywhere; ``float16`` from 7.0; ``bfloat16`` from 8.0; the ``int8_*`` types
where int8 runs (6.1, and 7.0 on) with their float type's own condition. ``auto`` picks:

- capability 8.0 and newer (Ampere, Hopper, ...): ``int8_bfloat16`` (int8 weights, bfloat16
  activations: bfloat16 keeps float32's range);
- 7.x (Volta, Turing) and 6.1: ``int8_float32``. A float16 path is the faster one there, but
  T5's activations overflow float16 (NaN or empty answers: CTranslate2 issue #1074, and the
  TensorRT-LLM build refuses float16 for the same reason), so float16 types are chosen only
  when asked for (``--gpu-compute-type int8_float16``) and checked by ``make gpu-acceptance``;
- anything older: ``float32``.

What a device supports is asked of CTranslate2 (``get_supported_compute_types``) when the
engine loads; :func:`supported_for_capability` states the same rules for planning and tests.
"""

from __future__ import annotations

import importlib
from typing import Any

DEVICES = ("cpu", "cuda")
CPU_COMPUTE_TYPES = ("int8", "float32")
CUDA_COMPUTE_TYPES = (
    "int8_bfloat16",
    "int8_float16",
    "int8_float32",
    "bfloat16",
    "float16",
    "float32",
)
AUTO = "auto"  # CUDA only: chosen from what the device supports


def supported_for_capability(major: int, minor: int) -> frozenset[str]:
    """Return the CUDA compute types CTranslate2 runs on a GPU of capability ``major.minor``."""
    float16 = major >= 7
    bfloat16 = major >= 8
    int8 = major > 6 or (major == 6 and minor == 1)
    supported = {"float32"}
    if float16:
        supported.add("float16")
    if bfloat16:
        supported.add("bfloat16")
    if int8:
        supported.add("int8_float32")
        if float16:
            supported.add("int8_float16")
        if bfloat16:
            supported.add("int8_bfloat16")
    return frozenset(supported)


def choose_cuda_compute_type(supported: frozenset[str] | set[str]) -> str:
    """Return the compute type ``auto`` means on a device supporting ``supported``."""
    for choice in ("int8_bfloat16", "int8_float32"):
        if choice in supported:
            return choice
    return "float32"


def check_compute_type(device: str, compute_type: str) -> None:
    """Raise ValueError when ``compute_type`` is not one the ``device`` kind knows."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    known = CPU_COMPUTE_TYPES if device == "cpu" else (AUTO, *CUDA_COMPUTE_TYPES)
    if compute_type not in known:
        raise ValueError(
            f"compute_type {compute_type!r} does not run on {device}: expected one of "
            f"{', '.join(known)}"
        )


def resolve_compute_type(
    device: str, compute_type: str, device_index: int = 0, runtime: Any = None
) -> str:
    """Return the compute type to load with: checked, and ``auto`` resolved for the GPU.

    ``runtime`` is the ``ctranslate2`` module (tests pass a stand-in); imported when needed.

    Raises:
        ValueError: the type is unknown for the device, or this GPU cannot run it (the message
            lists what it can run).
        RuntimeError: there is no CUDA device ``device_index``.

    """
    check_compute_type(device, compute_type)
    if device == "cpu":
        return compute_type
    if runtime is None:
        runtime = importlib.import_module("ctranslate2")
    count = int(runtime.get_cuda_device_count())
    if not 0 <= device_index < count:
        raise RuntimeError(
            f"no CUDA device {device_index}: CTranslate2 sees {count} (driver, "
            "CUDA_VISIBLE_DEVICES and libcublas.so.12 on the library path: "
            "docs/gpu-deployment.md)"
        )
    supported = frozenset(runtime.get_supported_compute_types("cuda", device_index))
    if compute_type == AUTO:
        return choose_cuda_compute_type(supported)
    if compute_type not in supported:
        raise ValueError(
            f"CUDA device {device_index} cannot run compute_type {compute_type!r}; it runs "
            f"{', '.join(sorted(supported))}"
        )
    return compute_type
