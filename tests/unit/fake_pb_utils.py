"""A fake ``triton_python_backend_utils`` for unit tests of the Triton python models.

It implements the part of the python backend API the models use: Tensor, InferenceRequest
(with ``exec``/``async_exec`` routed to fake or real models registered in :data:`ROUTES`),
InferenceResponse, TritonError with its codes, the two tensor lookups and Logger (recorded in
:data:`LOG`). :func:`load_model` imports a ``model_repository/<name>/1/model.py`` against it
and initializes it with the filled template of that model, as Triton would.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from instructner.deploy.templates import fill_template
from instructner.serving import public_model

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG: list[tuple[str, str]] = []
ROUTES: dict[str, Callable[[InferenceRequest], InferenceResponse]] = {}


class TritonError(Exception):
    UNKNOWN = 0
    INTERNAL = 1
    NOT_FOUND = 2
    INVALID_ARG = 3
    UNAVAILABLE = 4
    UNSUPPORTED = 5
    ALREADY_EXISTS = 6
    CANCELLED = 7

    def __init__(self, message: str, code: int = INTERNAL) -> None:
        super().__init__(message)
        self._message = message
        self._code = code

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code


class TritonModelException(Exception):
    pass


class Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        if not isinstance(array, np.ndarray):
            raise TritonModelException(f"tensor {name} must be a numpy array")
        self._name = name
        self._array = array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class InferenceResponse:
    def __init__(self, output_tensors: list[Tensor], error: TritonError | None = None) -> None:
        self._outputs = list(output_tensors)
        self._error = error

    def output_tensors(self) -> list[Tensor]:
        return self._outputs

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> TritonError | None:
        return self._error


class InferenceRequest:
    def __init__(
        self,
        model_name: str = "",
        inputs: list[Tensor] | None = None,
        requested_output_names: list[str] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.model_name = model_name
        self._parameters = dict(parameters or {})
        self._inputs = list(inputs or [])
        self.requested_output_names = list(requested_output_names or [])
        # tests cancel a request after N checks (the caller leaving mid-document)
        self.cancel_after_checks: int | None = None
        self.cancel_checks = 0

    def is_cancelled(self) -> bool:
        self.cancel_checks += 1
        return (
            self.cancel_after_checks is not None and self.cancel_checks > self.cancel_after_checks
        )

    def parameters(self) -> str:
        return json.dumps(self._parameters)

    def inputs(self) -> list[Tensor]:
        return self._inputs

    def exec(self) -> InferenceResponse:
        if self.model_name not in ROUTES:
            return InferenceResponse([], TritonError(f"unknown model {self.model_name}", 2))
        return ROUTES[self.model_name](self)

    async def async_exec(self) -> InferenceResponse:
        return self.exec()


def get_input_tensor_by_name(request: InferenceRequest, name: str) -> Tensor | None:
    return next((t for t in request.inputs() if t.name() == name), None)


def get_output_tensor_by_name(response: InferenceResponse, name: str) -> Tensor | None:
    return next((t for t in response.output_tensors() if t.name() == name), None)


class Logger:
    @staticmethod
    def log_info(message: str) -> None:
        LOG.append(("info", message))

    @staticmethod
    def log_warn(message: str) -> None:
        LOG.append(("warn", message))

    @staticmethod
    def log_error(message: str) -> None:
        LOG.append(("error", message))

    @staticmethod
    def log_verbose(message: str) -> None:
        LOG.append(("verbose", message))


def install() -> types.ModuleType:
    """Make ``import triton_python_backend_utils`` return this module."""
    module = sys.modules[__name__]
    sys.modules["triton_python_backend_utils"] = module
    return module


def request(**inputs: np.ndarray) -> InferenceRequest:
    """Return a request carrying the given input arrays."""
    return InferenceRequest(inputs=[Tensor(name, array) for name, array in inputs.items()])


def strings(*rows: list[str] | list[bytes]) -> np.ndarray:
    """Return a BYTES array ``[len(rows), len(rows[0])]`` (str items are UTF-8 encoded)."""
    array = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=np.object_)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            array[r, c] = value.encode("utf-8") if isinstance(value, str) else value
    return array


def outputs(response: InferenceResponse) -> dict[str, np.ndarray]:
    """Return a response's outputs by name."""
    assert not response.has_error(), response.error().message()
    return {t.name(): t.as_numpy() for t in response.output_tensors()}


def model_config_json(template_name: str, values: Mapping[str, object]) -> str:
    """Fill a committed config template and return it as the JSON Triton gives ``initialize``."""
    template = REPO_ROOT / "model_repository" / template_name / "config.pbtxt"
    filled = fill_template(template.read_text(encoding="utf-8"), values, str(template))
    config = text_format.Parse(filled, model_config_pb2.ModelConfig())
    return json.dumps(json_format.MessageToDict(config, preserving_proto_field_name=True))


def load_model(
    template_name: str, values: Mapping[str, object], patch: Mapping[str, Any] | None = None
) -> Any:
    """Import ``model_repository/<template_name>/1/model.py`` and return an initialized model.

    ``patch`` replaces module attributes before ``initialize`` (e.g. ``engine_from_parameters``).
    """
    install()
    path = REPO_ROOT / "model_repository" / template_name / "1" / "model.py"
    spec = importlib.util.spec_from_file_location(f"triton_model_{template_name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # A name the model module does not hold is patched, during initialize only, in the
    # module that loads the public model's step (instruction_ner keeps no logic itself).
    restore: list[tuple[Any, str, Any]] = []
    for name, value in (patch or {}).items():
        owner = module if hasattr(module, name) else public_model
        restore.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)
    model = module.TritonPythonModel()
    try:
        model.initialize(
            {
                "model_config": model_config_json(template_name, values),
                "model_name": str(values["model_name"]),
                "model_instance_kind": "CPU",
                "model_instance_name": f"{values['model_name']}_0",
                "model_repository": str(path.parent.parent),
                "model_version": "1",
            }
        )
    finally:
        for owner, name, original in restore:
            if owner is public_model:
                setattr(owner, name, original)
    return model
