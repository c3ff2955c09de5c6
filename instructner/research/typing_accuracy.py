"""Entity typing given the gold entities: how many does the model label correctly.

For every sentence with gold entities, the model answers the typing prompt listing the gold
entity texts (as training builds it, options in corpus order); the answer is parsed as the
server parses it (:func:`instructner.method.parser.parse_type_answer`). A gold entity counts as
correct when an entity at its exact span comes back with its label word. Accuracy is correct
over all gold entities (an entity the answer leaves out counts as wrong).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase, T5ForConditionalGeneration

from instructner.method.labels import Verbalizer
from instructner.method.parser import parse_type_answer
from instructner.method.prompts import type_prompt
from instructner.method.types import Sentence
from instructner.research.evaluation import GenerationSettings, check_tags


def evaluate_typing(
    model: T5ForConditionalGeneration,
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sentence],
    verbalizer: Verbalizer,
    settings: GenerationSettings | None = None,
) -> dict[str, Any]:
    """Return typing accuracy overall and per tag, with the counts behind it."""
    settings = settings or GenerationSettings()
    check_tags(sentences, verbalizer)
    options = list(verbalizer.words)
    typed = [s for s in sentences if s.spans]
    golds = [s.char_spans() for s in typed]
    prompts = [
        type_prompt(s.text, [e.text for e in gold], options)
        for s, gold in zip(typed, golds, strict=True)
    ]
    generation = settings.generate(model, tokenizer, prompts)
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    answered = 0
    for sentence, gold, answer in zip(typed, golds, generation.answers, strict=True):
        found = parse_type_answer(answer, sentence.text, [e.text for e in gold], options)
        labels = {(e.start, e.end): e.label for e in found}
        for entity in gold:
            tag = str(entity.label)
            total[tag] += 1
            given = labels.get((entity.start, entity.end))
            answered += given is not None
            right[tag] += given is not None and verbalizer.tag(given) == tag
    gold_total = sum(total.values())
    return {
        "task": "type",
        "sentences": len(typed),
        "gold_entities": gold_total,
        "typed_entities": answered,
        "correct": sum(right.values()),
        "accuracy": sum(right.values()) / gold_total if gold_total else 0.0,
        "per_type": {
            tag: {"gold": total[tag], "accuracy": right[tag] / total[tag]} for tag in sorted(total)
        },
        "unfinished_answers": len(generation.unfinished),
    }
