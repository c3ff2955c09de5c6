"""Turn engine output into ``ExtractionResult`` messages, per window and per document."""

from __future__ import annotations

from collections.abc import Sequence

from instructner.parser import parse_answer
from instructner.serving.protos import Entity, ExtractionResult, Window
from instructner.types import Entity as CoreEntity

WINDOW_SEPARATOR = "\n"  # between the answers of windows in generated_text


def window_result(
    task: str,
    text: str,
    answer: str,
    labels: Sequence[str] = (),
    entities: Sequence[str] = (),
    input_tokens: int = 0,
    output_tokens: int = 0,
    output_limit_reached: bool = False,
) -> ExtractionResult:
    """Parse one window's answer into a result whose offsets index ``text``."""
    found = parse_answer(task, answer, text, labels, entities)
    return ExtractionResult(
        task=task,
        entities=[_entity_message(e) for e in found],
        generated_text=answer,
        windows=[
            Window(
                start=0,
                end=len(text),
                generated_text=answer,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                output_limit_reached=output_limit_reached,
            )
        ],
    )


def _entity_message(entity: CoreEntity) -> Entity:
    message = Entity(text=entity.text, start=entity.start, end=entity.end)
    if entity.label is not None:
        message.label = entity.label
    return message


def merge_windows(
    task: str, document: str, parts: Sequence[tuple[int, ExtractionResult]]
) -> ExtractionResult:
    """Merge window results into the document's result, shifting offsets by each window start.

    ``parts`` are (window start in ``document``, window result) in text order.

    Raises:
        ValueError: a shifted entity does not match the document text (a bug, never input).

    """
    merged = ExtractionResult(task=task)
    answers = []
    for offset, part in parts:
        for entity in part.entities:
            shifted = merged.entities.add()
            shifted.CopyFrom(entity)
            shifted.start = entity.start + offset
            shifted.end = entity.end + offset
            if document[shifted.start : shifted.end] != shifted.text:
                raise ValueError(
                    f"entity {shifted.text!r} shifted to {shifted.start}-{shifted.end} does not "
                    "match the document text"
                )
        for window in part.windows:
            shifted_window = merged.windows.add()
            shifted_window.CopyFrom(window)
            shifted_window.start = window.start + offset
            shifted_window.end = window.end + offset
        answers.append(part.generated_text)
    merged.generated_text = WINDOW_SEPARATOR.join(answers)
    return merged


def result_to_dict(result: ExtractionResult) -> dict[str, object]:
    """Return a result as plain JSON-ready values (entities as text, label, start, end)."""
    return {
        "task": result.task,
        "entities": [
            {
                "text": e.text,
                "label": e.label if e.HasField("label") else None,
                "start": e.start,
                "end": e.end,
            }
            for e in result.entities
        ],
        "generated_text": result.generated_text,
        "windows": [
            {
                "start": w.start,
                "end": w.end,
                "generated_text": w.generated_text,
                "input_tokens": w.input_tokens,
                "output_tokens": w.output_tokens,
                "output_limit_reached": w.output_limit_reached,
            }
            for w in result.windows
        ],
    }
