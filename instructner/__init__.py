"""InstructionNER: instruction-based generative NER, served on Triton.

One package per job: ``instructner.method`` (prompts, parser, spans, labels, the model's view
of a text; no model runtime), ``instructner.serving`` (the runtime the Triton python models
import: validation, windows, the orchestration, engines), ``instructner.research`` (data,
training, evaluation, studies), ``instructner.deploy`` (repository builds, the launcher and
its supervision, probes, the front proxy) and the ``instructner`` CLI (``cli``,
``commands``). The import rules between them are import-linter contracts (pyproject.toml).
"""

from instructner.method.types import Entity, Sentence, TokenSpan

__all__ = ["Entity", "Sentence", "TokenSpan"]
__version__ = "0.1.0"
