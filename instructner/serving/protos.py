"""The generated protobuf messages (``make protos`` writes them; they are not in git)."""

from __future__ import annotations

try:
    from instructner.v1.extraction_pb2 import Entity, ExtractionResult, Window
except ImportError as exc:  # pragma: no cover - depends on the checkout's state
    raise ImportError(
        "the generated protobuf code is missing: run `make protos` "
        "(it writes instructner/v1/extraction_pb2.py from protos/)"
    ) from exc

__all__ = ["Entity", "ExtractionResult", "Window"]
