"""Prompts and answer sentences of the three InstructionNER tasks.

One convention, used for training targets and understood by :mod:`instructner.method.parser`:

* NER and entity typing answer ``"{e1} is a {l1}, {e2} is an {l2}."``: entities in the order
  they occur in the sentence, ``an`` before a label word that starts with a vowel letter
  (a, e, i, o, u), ``a`` otherwise; the parser accepts either article.
* Entity extraction answers ``"{e1}, {e2}."``.
* Every task answers ``"None"`` when there is no entity.
"""

from __future__ import annotations

from collections.abc import Sequence

TASKS: tuple[str, ...] = ("ner", "extract", "type")
NONE_ANSWER = "None"

NER_INSTRUCTION = (
    "please extract entities and their types from the input sentence, "
    "all entity types are in options"
)
EXTRACT_INSTRUCTION = "please extract entity words from the input sentence"
TYPE_INSTRUCTION = "please typing these entity words according to sentence: "
# A training-only auxiliary task (not served): the answer is the sentence itself, which teaches
# a model trained from scratch to copy from its input (answers must copy entity spans).
COPY_INSTRUCTION = "please copy the input sentence"


def _options(labels: Sequence[str]) -> str:
    if not labels:
        raise ValueError("labels must not be empty: the prompt lists the options to choose from")
    return ", ".join(labels)


def ner_prompt(sentence: str, labels: Sequence[str]) -> str:
    """Return the NER prompt: sentence, instruction, and the label words as options."""
    return f"Sentence: {sentence} Instruction: {NER_INSTRUCTION} Options: {_options(labels)}"


def extract_prompt(sentence: str) -> str:
    """Return the entity-extraction prompt (no options: spans without types)."""
    return f"Sentence: {sentence} Instruction: {EXTRACT_INSTRUCTION}"


def copy_prompt(sentence: str) -> str:
    """Return the copy prompt of the training-only copy task; its answer is the sentence."""
    return f"Sentence: {sentence} Instruction: {COPY_INSTRUCTION}"


def type_prompt(sentence: str, entities: Sequence[str], labels: Sequence[str]) -> str:
    """Return the entity-typing prompt: the given entity words are to be typed from options."""
    if not entities:
        raise ValueError("entities must not be empty: the typing task types given entity words")
    return (
        f"Sentence: {sentence} Instruction: {TYPE_INSTRUCTION}{', '.join(entities)} "
        f"Options: {_options(labels)}"
    )


def build_prompt(
    task: str, sentence: str, labels: Sequence[str] = (), entities: Sequence[str] = ()
) -> str:
    """Return the prompt for ``task`` (one of :data:`TASKS`)."""
    if task == "ner":
        return ner_prompt(sentence, labels)
    if task == "extract":
        return extract_prompt(sentence)
    if task == "type":
        return type_prompt(sentence, entities, labels)
    raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")


def article(label: str) -> str:
    """Return ``an`` for a label word starting with a vowel letter, else ``a``."""
    return "an" if label[:1].lower() in "aeiou" and label[:1] else "a"


def ner_answer(pairs: Sequence[tuple[str, str]]) -> str:
    """Return the NER/typing answer for (entity text, label word) pairs in sentence order."""
    if not pairs:
        return NONE_ANSWER
    return ", ".join(f"{text} is {article(label)} {label}" for text, label in pairs) + "."


def type_answer(pairs: Sequence[tuple[str, str]]) -> str:
    """Return the entity-typing answer; the same sentence form as the NER answer."""
    return ner_answer(pairs)


def extract_answer(texts: Sequence[str]) -> str:
    """Return the entity-extraction answer for entity texts in sentence order."""
    if not texts:
        return NONE_ANSWER
    return ", ".join(texts) + "."


def parse_prompt(prompt: str) -> tuple[str, str, list[str]]:
    """Return (task, sentence, label words) of a prompt built by :func:`build_prompt`.

    The instruction is searched from the right: label and entity words never hold a prompt
    marker (request validation), the sentence may, so the last instruction is the prompt's own.
    Extraction prompts have no label words.

    Raises:
        ValueError: ``prompt`` is not one of this module's prompts.

    """
    if not prompt.startswith("Sentence: "):
        raise ValueError("not a prompt of this project: it does not start with 'Sentence: '")
    body = prompt[len("Sentence: ") :]
    ner = body.rfind(f" Instruction: {NER_INSTRUCTION} Options: ")
    typing = body.rfind(f" Instruction: {TYPE_INSTRUCTION}")
    if ner != -1 and ner >= typing:
        options = body[ner + len(f" Instruction: {NER_INSTRUCTION} Options: ") :]
        return "ner", body[:ner], options.split(", ")
    if typing != -1:
        options_at = body.rfind(" Options: ")
        if options_at < typing:
            raise ValueError("not a prompt of this project: a typing prompt without options")
        return "type", body[:typing], body[options_at + len(" Options: ") :].split(", ")
    extract = f" Instruction: {EXTRACT_INSTRUCTION}"
    if body.endswith(extract):
        return "extract", body[: -len(extract)], []
    raise ValueError("not a prompt of this project: no known instruction")
