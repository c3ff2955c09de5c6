"""The method layer: what InstructionNER is, with no model runtime.

Prompts and tasks (``prompts``), the answer parser and its spans (``parser``, ``spans``,
``constrained``: the answer grammar), label words and callers' words (``labels``,
``label_words``, ``label_aliases``), the model's view of a text (``textview``), entity scores
(``confidence``), loop detection (``loops``), what a model was trained for (``trained_tasks``,
``model_info``) and the shared types. No torch, transformers or CTranslate2 (import-linter
contract in pyproject.toml): the serving runtime and the training code both build on it.
"""
