"""Thin gRPC client of the InstructNER model served by Triton Inference Server.

from instructner_client import InstructNERClient

with InstructNERClient("localhost:8001", timeout=10.0) as client:
    client.ner("Angela Merkel visited Paris .", labels=["person", "location"])

gRPC's own C-core log lines (a TLS handshake against a plaintext port, ...) would reach stderr
beside the client's clear errors; before gRPC loads, the package sets ``GRPC_VERBOSITY`` to
``ERROR`` unless the caller set it: ``GRPC_VERBOSITY=INFO`` (or ``DEBUG``) shows them again.
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # before tritonclient imports grpc

from ._async import AsyncInstructNERClient  # noqa: E402 - after the gRPC log setting
from ._errors import (
    DeadlineExceededError,
    InstructNERError,
    InvalidInputError,
    ModelNotReadyError,
    OverloadedError,
    ServerUnavailableError,
    UnsupportedTaskError,
    map_error,
)
from ._options import Keepalive, RetryPolicy, TLSConfig
from ._sync import InstructNERClient
from ._types import Entity, Extraction, ModelInfo, TypedEntity, Window
from ._validation import TASKS, EntityRef, Task
from ._version import __version__ as __version__

__all__ = [
    "TASKS",
    "AsyncInstructNERClient",
    "DeadlineExceededError",
    "Entity",
    "EntityRef",
    "Extraction",
    "InstructNERClient",
    "InstructNERError",
    "InvalidInputError",
    "Keepalive",
    "ModelInfo",
    "ModelNotReadyError",
    "OverloadedError",
    "RetryPolicy",
    "ServerUnavailableError",
    "TLSConfig",
    "Task",
    "TypedEntity",
    "UnsupportedTaskError",
    "Window",
    "map_error",
]
