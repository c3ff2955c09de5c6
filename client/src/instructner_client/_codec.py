"""Requests to Triton tensors and the RESULT tensor back to entities (shared by both clients)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from tritonclient.grpc import InferInput, InferRequestedOutput

from ._errors import InstructNERError
from ._proto import ExtractionResult
from ._types import Entity, Extraction, ModelInfo, TypedEntity, Window
from ._validation import InferenceRequest

__all__ = ["RESULT_OUTPUT", "decode_result", "encode_request", "requested_outputs"]

RESULT_OUTPUT = "RESULT"


def _bytes_input(name: str, values: Sequence[str]) -> InferInput:
    # The model has a batch dimension (max_batch_size > 0): one request is one row.
    array = np.array([[value.encode("utf-8") for value in values]], dtype=np.object_)
    tensor = InferInput(name, list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def encode_request(request: InferenceRequest) -> list[InferInput]:
    """Return the input tensors: TEXT, TASK; LABELS, ENTITIES, ENTITY_SPANS, MIN_SCORE if used."""
    inputs = [_bytes_input("TEXT", [request.text]), _bytes_input("TASK", [request.task])]
    if request.labels:
        inputs.append(_bytes_input("LABELS", request.labels))
    if request.entities:
        inputs.append(_bytes_input("ENTITIES", request.entities))
    if request.spans is not None:
        spans = np.array([request.spans], dtype=np.int64).reshape(1, len(request.spans), 2)
        tensor = InferInput("ENTITY_SPANS", list(spans.shape), "INT64")
        tensor.set_data_from_numpy(spans)
        inputs.append(tensor)
    if request.min_score > 0.0:
        minimum = InferInput("MIN_SCORE", [1, 1], "FP32")
        minimum.set_data_from_numpy(np.array([[request.min_score]], dtype=np.float32))
        inputs.append(minimum)
    return inputs


def requested_outputs() -> list[InferRequestedOutput]:
    """Return the outputs to ask for: only RESULT, which also carries the generated text."""
    return [InferRequestedOutput(RESULT_OUTPUT)]


def _result_bytes(array: np.ndarray | None) -> bytes:
    if array is None:
        raise InstructNERError(f"the server's response has no {RESULT_OUTPUT} output")
    if array.size != 1:
        raise InstructNERError(
            f"the server's {RESULT_OUTPUT} output has shape {list(array.shape)}, expected one value"
        )
    value = array.reshape(-1)[0]
    if not isinstance(value, bytes):
        raise InstructNERError(
            f"the server's {RESULT_OUTPUT} output holds {type(value).__name__}, expected bytes"
        )
    return value


def decode_result(array: np.ndarray | None, request: InferenceRequest) -> Extraction:
    """Decode the RESULT tensor of one response into an :class:`Extraction`.

    Every entity is checked against the text that was sent, so that a server answering with
    offsets that do not point at the entity text is reported instead of passed on.

    Raises:
        InstructNERError: when the output is missing, malformed or inconsistent with the request.

    """
    raw = _result_bytes(array)
    try:
        message = ExtractionResult.FromString(raw)
    except DecodeError as error:
        raise InstructNERError(
            f"the server's {RESULT_OUTPUT} output is not an ExtractionResult: {error}"
        ) from None
    if message.task != request.task:
        raise InstructNERError(
            f"the server answered task {message.task!r} to a {request.task!r} request"
        )
    text = request.text
    entities: list[Entity] = []
    for index, item in enumerate(message.entities):
        start, end = item.start, item.end
        if not (0 <= start < end <= len(text)) or text[start:end] != item.text:
            raise InstructNERError(
                f"the server returned entity {index} {item.text!r} at [{start}, {end}), which is "
                f"not that text's position in the {len(text)}-character input"
            )
        label = item.label if item.HasField("label") else None
        if request.task == "extract" and label is not None:
            raise InstructNERError(
                f"the server returned label {label!r} for entity {item.text!r} of an extract call"
            )
        if request.task != "extract" and label not in request.labels:
            raise InstructNERError(
                f"the server returned label {label!r} for entity {item.text!r}, "
                f"which is not one of the labels sent ({', '.join(request.labels)})"
            )
        score = item.score if item.HasField("score") else None
        if score is not None and not 0.0 <= score <= 1.0:
            raise InstructNERError(
                f"the server returned score {score} for entity {item.text!r}, outside [0, 1]"
            )
        model_label = item.model_label if item.HasField("model_label") else None
        if label is None:
            entities.append(Entity(item.text, None, start, end, score))
        else:
            entities.append(TypedEntity(item.text, label, start, end, score, model_label))
    windows = tuple(
        Window(
            start=window.start,
            end=window.end,
            generated_text=window.generated_text,
            input_tokens=window.input_tokens,
            output_tokens=window.output_tokens,
            output_limit_reached=window.output_limit_reached,
        )
        for window in message.windows
    )
    return Extraction(
        task=message.task,
        text=text,
        entities=tuple(entities),
        generated_text=message.generated_text,
        windows=windows,
    )


def typed(entities: Iterable[Entity]) -> list[TypedEntity]:
    """Return the entities of a ``ner`` or ``type`` result, each with its label.

    Raises:
        InstructNERError: an entity without a label (the server broke the contract).

    """
    result = []
    for entity in entities:
        if not isinstance(entity, TypedEntity):
            raise InstructNERError(f"the server returned entity {entity.text!r} without a label")
        result.append(entity)
    return result


MODEL_INFO_PARAMETER = "model_info"


def decode_model_info(config: Mapping[str, Any], model_name: str) -> ModelInfo:
    """Return the ``model_info`` parameter of a model-config reply (JSON form) as ModelInfo.

    Raises:
        InstructNERError: the model's configuration carries no (valid) model information.

    """
    body = config.get("config", config)
    raw = (body.get("parameters") or {}).get(MODEL_INFO_PARAMETER, {}).get("string_value")
    if not raw:
        raise InstructNERError(
            f"model {model_name!r} publishes no model information (a server built before "
            "model_info was added: rebuild it with `make engines`)"
        )
    try:
        data = json.loads(raw)
        return ModelInfo(
            tasks=tuple(data["tasks"]),
            corpora=tuple(data.get("corpora", [])),
            label_words={c: tuple(ws) for c, ws in data.get("label_words", {}).items()},
            also_trained_words={
                c: {w: tuple(ws) for w, ws in by_word.items()}
                for c, by_word in data.get("also_trained_words", {}).items()
            },
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InstructNERError(
            f"model {model_name!r}: unreadable model information: {error}"
        ) from error
