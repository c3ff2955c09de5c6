"""Evaluate a T5 InstructionNER model on annotated sentences with the NER prompt.

The model answers the NER prompt (the corpus's label words as options, corpus order), the
parser turns each answer into character-offset entities, the verbalizer maps label words
back to corpus tags, and :mod:`instructner.research.metrics` scores strict span-level P/R/F1.

Scoring runs on character offsets of the sentence text (tokens joined by single spaces), so
a predicted span that does not sit on token boundaries matches no gold span and is a false
positive; it is also listed as unaligned in its prediction record. Nothing is dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase, T5ForConditionalGeneration

from instructner.method.labels import Verbalizer
from instructner.method.parser import parse_ner_answer
from instructner.method.prompts import ner_prompt
from instructner.method.types import Entity, Sentence
from instructner.modeling import Generation, generate
from instructner.research.metrics import Scores, Span, entities_to_token_spans, score_spans

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.jsonl"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class GenerationSettings:
    """How answers are generated during evaluation."""

    batch_size: int = 32
    max_new_tokens: int = 128
    num_beams: int = 1
    max_source_length: int = 512
    truncate: bool = False  # cut over-long prompts (counted) instead of raising
    # only spans of the sentence and the options' labels (instructner.method.constrained)
    constrained: bool = False

    def generate(
        self,
        model: T5ForConditionalGeneration,
        tokenizer: PreTrainedTokenizerBase,
        prompts: Sequence[str],
        allowed_tokens: Sequence[Callable[[list[int]], list[int]]] | None = None,
    ) -> Generation:
        """Answer ``prompts`` with these settings (:func:`instructner.modeling.generate`)."""
        return generate(
            model,
            tokenizer,
            prompts,
            batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens,
            num_beams=self.num_beams,
            max_source_length=self.max_source_length,
            truncate=self.truncate,
            allowed_tokens=allowed_tokens,
        )


@dataclass
class Evaluation:
    """Scores plus one JSON-ready record per sentence and counts of special cases."""

    scores: Scores
    records: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)

    def metrics(self, **extra: Any) -> dict[str, Any]:
        """Return the metrics JSON: micro P/R/F1, counts, per type, plus ``extra`` fields."""
        return {**extra, **self.scores.to_dict(), **self.counts}


def _entity_record(entity: Entity, tag: str, token_span: tuple[int, int] | None) -> dict[str, Any]:
    record = entity.to_dict()
    record["tag"] = tag
    record["token_start"], record["token_end"] = token_span if token_span else (None, None)
    return record


def check_tags(sentences: Sequence[Sentence], verbalizer: Verbalizer) -> None:
    """Check that every gold tag of ``sentences`` is a label of ``verbalizer``.

    Raises:
        ValueError: naming the first sentence (by source) with an unknown tag.

    """
    for sentence in sentences:
        for span in sentence.spans:
            if not verbalizer.has_tag(span.tag):
                raise ValueError(
                    f"{sentence.source or 'sentence'}: tag {span.tag!r} is not a label of "
                    f"verbalizer {verbalizer.corpus!r} ({', '.join(verbalizer.tags)})"
                )


def evaluate_sentences(
    model: T5ForConditionalGeneration,
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[Sentence],
    verbalizer: Verbalizer,
    settings: GenerationSettings | None = None,
) -> Evaluation:
    """Generate NER answers for ``sentences`` and score them against their gold spans.

    Raises:
        ValueError: a prompt exceeds the source limit and truncation was not allowed, or a
            gold tag is unknown to the verbalizer.

    """
    settings = settings or GenerationSettings()
    options = list(verbalizer.words)
    check_tags(sentences, verbalizer)  # before generating, which is the slow part
    prompts = [ner_prompt(sentence.text, options) for sentence in sentences]
    allowed = None
    if settings.constrained:
        from instructner.method.constrained import NerAnswerGrammar

        allowed = [NerAnswerGrammar(tokenizer, s.text, options).allowed for s in sentences]
    generation = settings.generate(model, tokenizer, prompts, allowed)
    return score_answers(
        sentences,
        generation.answers,
        verbalizer,
        truncated=generation.truncated,
        unfinished=generation.unfinished,
    )


def score_answers(
    sentences: Sequence[Sentence],
    answers: Sequence[str],
    verbalizer: Verbalizer,
    truncated: Sequence[int] = (),
    unfinished: Sequence[int] = (),
) -> Evaluation:
    """Parse NER answers (one per sentence) and score them against the gold spans.

    ``truncated``/``unfinished`` are the indices of sentences whose prompt was cut or whose
    answer hit the token limit; they are flagged in the records and counted.

    Raises:
        ValueError: the number of answers differs from the number of sentences, or a gold
            tag is unknown to the verbalizer.

    """
    if len(answers) != len(sentences):
        raise ValueError(f"{len(answers)} answers for {len(sentences)} sentences")
    check_tags(sentences, verbalizer)
    options = list(verbalizer.words)
    truncated_set, unfinished_set = set(truncated), set(unfinished)
    gold_spans: list[list[Span]] = []
    pred_spans: list[list[Span]] = []
    records: list[dict[str, Any]] = []
    unaligned_total = 0
    for index, (sentence, answer) in enumerate(zip(sentences, answers, strict=True)):
        gold = sentence.char_spans()
        predicted = parse_ner_answer(answer, sentence.text, options)
        tags = [verbalizer.tag(str(entity.label)) for entity in predicted]
        gold_spans.append([(e.start, e.end, str(e.label)) for e in gold])
        pred_spans.append([(e.start, e.end, tag) for e, tag in zip(predicted, tags, strict=True)])
        predicted_records = []
        for entity, tag in zip(predicted, tags, strict=True):
            alignment = entities_to_token_spans([entity], sentence, verbalizer.tag)
            token_span = None
            if alignment.spans:
                token_span = (alignment.spans[0].start, alignment.spans[0].end)
            unaligned_total += token_span is None
            predicted_records.append(_entity_record(entity, tag, token_span))
        records.append(
            {
                "index": index,
                "source": sentence.source,
                "sentence": sentence.text,
                "gold": [
                    {**e.to_dict(), "label": verbalizer.word(str(e.label)), "tag": e.label}
                    for e in gold
                ],
                "predicted": predicted_records,
                "answer": answer,
                "prompt_truncated": index in truncated_set,
                "answer_unfinished": index in unfinished_set,
            }
        )
    counts = {
        "sentences": len(sentences),
        "unaligned_predictions": unaligned_total,
        "truncated_prompts": len(truncated_set),
        "unfinished_answers": len(unfinished_set),
    }
    return Evaluation(scores=score_spans(gold_spans, pred_spans), records=records, counts=counts)


def write_evaluation(
    evaluation: Evaluation, output_dir: str | Path, **extra: Any
) -> tuple[Path, Path]:
    """Write ``predictions.jsonl`` and ``metrics.json`` into ``output_dir``; return both paths."""
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    predictions_path = directory / PREDICTIONS_FILE
    with predictions_path.open("w", encoding="utf-8") as handle:
        for record in evaluation.records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    metrics_path = directory / METRICS_FILE
    metrics_path.write_text(
        json.dumps(evaluation.metrics(**extra), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return predictions_path, metrics_path
