"""Training examples of the three InstructionNER tasks, built from annotated sentences.

One sentence gives up to three (prompt, target) pairs: NER over the corpus's full option list,
entity extraction, and entity typing of the gold entity texts (only for sentences that have
entities: there is nothing to type otherwise). The option order can be shuffled per example
with a seeded RNG: a model trained from scratch on a fixed order learns option *positions*
instead of reading the option words.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from instructner.method.labels import Verbalizer
from instructner.method.prompts import (
    TASKS,
    copy_prompt,
    extract_answer,
    extract_prompt,
    ner_answer,
    ner_prompt,
    type_answer,
    type_prompt,
)
from instructner.method.types import Sentence
from instructner.research.augment import AugmentConfig, MentionBank, augment_sentence
from instructner.research.example_labels import example_labels


@dataclass(frozen=True)
class Example:
    """One seq2seq training pair; ``task`` is one of :data:`instructner.method.prompts.TASKS`."""

    prompt: str
    target: str
    task: str
    corpus: str = ""


@dataclass(frozen=True)
class CorpusSentences:
    """Sentences of one corpus together with the verbalizer that names its tags."""

    name: str
    sentences: Sequence[Sentence]
    verbalizer: Verbalizer


def check_tasks(tasks: Iterable[str]) -> tuple[str, ...]:
    """Return ``tasks`` as a tuple after checking each name, in :data:`TASKS` order.

    Raises:
        ValueError: a task name is unknown, or no task is given.

    """
    chosen = set(tasks)
    unknown = sorted(chosen - set(TASKS))
    if unknown:
        raise ValueError(f"unknown tasks {unknown}: expected some of {', '.join(TASKS)}")
    if not chosen:
        raise ValueError(f"no task chosen: expected some of {', '.join(TASKS)}")
    return tuple(task for task in TASKS if task in chosen)


def sentence_examples(
    sentence: Sentence,
    verbalizer: Verbalizer,
    tasks: Sequence[str] = TASKS,
    rng: random.Random | None = None,
    corpus: str = "",
    augment: AugmentConfig | None = None,
) -> list[Example]:
    """Build the examples of one sentence for ``tasks``, in :data:`TASKS` order.

    Args:
        sentence: the annotated sentence; its spans are labelled with corpus tags.
        verbalizer: maps the corpus tags to the label words used in prompts and answers.
        tasks: which of ``ner``, ``extract``, ``type`` to build.
        rng: when given, the options are shuffled with it (one shuffle per example);
            when ``None`` they keep the verbalizer's (corpus) order.
        corpus: recorded on each example, for mixing statistics.
        augment: with ``rng``, NER prompts may list a random option subset
            (:func:`instructner.research.augment.option_subset`); the answer then keeps only the
            entities whose labels are listed.

    Raises:
        KeyError: a tag of the sentence is not known to the verbalizer.
        ValueError: a task name is unknown.

    """
    tasks = check_tasks(tasks)
    text = sentence.text
    entities = sentence.char_spans()
    gold_tags = [str(entity.label) for entity in entities]
    examples: list[Example] = []
    for task in tasks:
        if task == "ner":
            labels = example_labels(verbalizer, corpus, gold_tags, augment, rng)
            pairs = [(e.text, labels.word(t)) for e, t in zip(entities, gold_tags, strict=True)]
            listed = set(labels.options)
            kept = [pair for pair in pairs if pair[1] in listed]
            examples.append(
                Example(ner_prompt(text, labels.options), ner_answer(kept), task, corpus)
            )
        elif task == "extract":
            answer = extract_answer([entity.text for entity in entities])
            examples.append(Example(extract_prompt(text), answer, task, corpus))
        elif entities:  # typing needs given entities
            # every given entity's label must stay listed: only the others are dropped
            labels = example_labels(verbalizer, corpus, gold_tags, augment, rng, keep_all_gold=True)
            pairs = [(e.text, labels.word(t)) for e, t in zip(entities, gold_tags, strict=True)]
            prompt = type_prompt(text, [pair[0] for pair in pairs], labels.options)
            examples.append(Example(prompt, type_answer(pairs), task, corpus))
    return examples


def build_examples(
    corpora: Sequence[CorpusSentences],
    tasks: Sequence[str] = TASKS,
    shuffle_options: bool = True,
    seed: int = 0,
    augment: AugmentConfig | None = None,
    task_probability: Mapping[str, float] | None = None,
    banks: Mapping[str, MentionBank] | None = None,
    copy_probability: float = 0.0,
) -> list[Example]:
    """Build the examples of several corpora, each with its own verbalizer, in input order.

    The same ``seed`` always gives the same option orders and augmentations; callers that want
    fresh ones every epoch pass a seed derived from the epoch. ``augment`` (with
    ``shuffle_options``) transforms sentences and option lists; ``banks`` holds each corpus's
    mentions for mention replacement (built from the corpus's sentences when missing).
    ``task_probability`` gives, per task, the chance that a sentence yields an example of it
    (1 for tasks not named), to set the share of the auxiliary tasks. ``copy_probability`` is
    the chance that a sentence (after augmentation) also yields a copy example (task
    ``"copy"``: :func:`instructner.method.prompts.copy_prompt`, answered by the sentence itself).
    """
    if not 0.0 <= copy_probability <= 1.0:
        raise ValueError(f"copy_probability must be in [0, 1], got {copy_probability}")
    tasks = check_tasks(tasks)
    rng = random.Random(seed) if shuffle_options else None
    probability = dict(task_probability or {})
    for task, value in probability.items():
        if task not in TASKS or not 0.0 <= value <= 1.0:
            raise ValueError(f"task_probability {task}: expected a task and a value in [0, 1]")
    draws = random.Random(f"{seed}/tasks")
    examples: list[Example] = []
    for corpus in corpora:
        bank = None
        if (
            augment is not None
            and rng is not None
            and (augment.mention_replace > 0 or augment.name_recombine.get(corpus.name))
        ):
            bank = (banks or {}).get(corpus.name) or MentionBank(corpus.sentences)
        for sentence in corpus.sentences:
            if augment is not None and rng is not None and augment.active:
                sentence = augment_sentence(sentence, corpus.name, bank, augment, rng)
            chosen = [
                t
                for t in tasks
                if probability.get(t, 1.0) >= 1.0 or draws.random() < probability[t]
            ]
            if chosen:
                examples.extend(
                    sentence_examples(
                        sentence, corpus.verbalizer, chosen, rng, corpus.name, augment
                    )
                )
            # drawn only when on, so runs without copies keep their random streams
            if copy_probability > 0 and draws.random() < copy_probability:
                text = sentence.text
                examples.append(Example(copy_prompt(text), text, "copy", corpus.name))
    return examples
