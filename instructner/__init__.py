"""InstructionNER core package: prompts, label words, answer parser, data, metrics, training.

Nothing here imports Triton; the Triton python models are thin wrappers over this package.
"""

from instructner.types import Entity, Sentence, TokenSpan

__all__ = ["Entity", "Sentence", "TokenSpan"]
__version__ = "0.1.0"
