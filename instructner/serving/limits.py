"""The documented request limits of the served models, overridable per model config.

Every limit is enforced with an INVALID_ARG error that states it; nothing is cut silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Limits:
    """Request limits; the model configs may override each one with a parameter of its name."""

    max_text_chars: int = 20_000  # TEXT, in code points, for the document model
    max_labels: int = 128  # LABELS entries (ATIS has 83 label words)
    max_label_chars: int = 64  # characters per label word
    max_entities: int = 128  # ENTITIES entries (task type)
    max_entity_chars: int = 256  # characters per entity
    max_input_tokens: int = 512  # prompt tokens one engine call reads (incl. the end token)
    max_output_tokens: int = 128  # tokens one engine call may generate per window
    # Work per document: a request whose text splits into more windows (engine calls) is
    # refused before any runs; a 20,000-character text of 10-character lines needs 2,000.
    max_windows: int = 2048
    # Windows of one document in the pipeline at once: a long document advances in steps of
    # this many, so other callers' windows reach the engine's queue between them, and a
    # cancelled request stops after the windows in flight.
    max_windows_in_flight: int = 8

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> Limits:
        """Return the defaults overridden by the integer values in ``parameters`` (by name).

        Keys that are not limits are ignored (model configs hold other parameters too).

        Raises:
            ValueError: a limit's value is not a positive integer.

        """
        overrides: dict[str, int] = {}
        for field in fields(cls):
            if field.name not in parameters:
                continue
            raw = parameters[field.name]
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(
                    f"parameter {field.name} must be a positive integer, got {raw!r}"
                ) from None
            if value < 1:
                raise ValueError(f"parameter {field.name} must be a positive integer, got {value}")
            overrides[field.name] = value
        return replace(cls(), **overrides)


DEFAULT_LIMITS = Limits()
