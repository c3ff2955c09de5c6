"""The sentences every path reads, and perf_analyzer's ``--input-data`` files built from them.

Real CoNLL-2003 test sentences with the corpus's label words (not random strings). The engine
model's inputs are built with the serving preprocessing itself
(:func:`instructner.serving.window_steps.preprocess`), so the engine alone reads exactly the
prompts that ``instruction_ner`` would send it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructner.method.labels import Verbalizer, get_verbalizer
from instructner.method.prompts import ner_prompt
from instructner.method.types import Sentence
from instructner.research.data import load_corpus
from instructner.serving.limits import Limits
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.window_steps import preprocess

CORPUS = "conll2003"
SPLIT = "test"
TASK = "ner"


@dataclass(frozen=True)
class Workload:
    """The benchmark's sentences, label words, prompts and generation length."""

    sentences: tuple[Sentence, ...]
    verbalizer: Verbalizer
    prompt_ids: tuple[tuple[int, ...], ...]  # engine inputs, end token included
    max_new_tokens: int
    end_id: int

    @property
    def labels(self) -> tuple[str, ...]:
        """The label words, in corpus order (the prompt's options)."""
        return tuple(self.verbalizer.words)

    @property
    def texts(self) -> list[str]:
        """The sentence texts (tokens joined by single spaces)."""
        return [s.text for s in self.sentences]

    def prompts(self) -> list[str]:
        """Return the NER prompt of every sentence, as a hand-written pipeline builds it."""
        return [ner_prompt(s.text, list(self.labels)) for s in self.sentences]

    def mean_prompt_tokens(self) -> float:
        """Mean number of encoder tokens per sentence."""
        return sum(len(ids) for ids in self.prompt_ids) / len(self.prompt_ids)


def load_workload(
    count: int,
    tokenizer: PromptTokenizer,
    limits: Limits,
    data_root: Path | None = None,
) -> Workload:
    """Return the first ``count`` CoNLL-2003 test sentences with their prompts.

    Raises:
        ValueError: ``count`` is not positive or the split has fewer sentences.

    """
    if count < 1:
        raise ValueError(f"the workload needs at least one sentence, got {count}")
    sentences = load_corpus(CORPUS, SPLIT, data_root)
    if len(sentences) < count:
        raise ValueError(f"{CORPUS} {SPLIT} has {len(sentences)} sentences, {count} were asked")
    chosen = tuple(sentences[:count])
    verbalizer = get_verbalizer(CORPUS)
    prompt_ids = tuple(
        tuple(preprocess(tokenizer, limits, s.text, TASK, verbalizer.words)[1]) for s in chosen
    )
    return Workload(
        sentences=chosen,
        verbalizer=verbalizer,
        prompt_ids=prompt_ids,
        max_new_tokens=limits.max_output_tokens,
        end_id=tokenizer.eos_token_id,
    )


def ensemble_input_data(workload: Workload, scores: bool = True) -> dict[str, Any]:
    """Return the ``--input-data`` JSON for ``instruction_ner``: one step per sentence.

    ``scores=False`` sends RETURN_SCORES false (the served path without entity scores).
    """
    labels = list(workload.labels)
    extra: dict[str, Any] = {} if scores else {"RETURN_SCORES": [False]}
    return {
        "data": [
            {
                "TEXT": [text],
                "TASK": [TASK],
                "LABELS": {"content": labels, "shape": [len(labels)]},
                **extra,
            }
            for text in workload.texts
        ]
    }


def engine_input_data(workload: Workload, log_probs: bool = True) -> dict[str, Any]:
    """Return the ``--input-data`` JSON for the engine model: the same prompts as token ids.

    ``log_probs`` asks for ``output_log_probs``, as ``instruction_ner`` asks its engine when it
    serves scores (the default): the engine alone then does the engine's share of the served
    work, and the comparisons with it measure what the server adds around the engine.
    """
    extra: dict[str, Any] = {"return_log_probs": [True]} if log_probs else {}
    return {
        "data": [
            {
                "input_ids": {"content": list(ids), "shape": [len(ids)]},
                "input_lengths": [len(ids)],
                "request_output_len": [workload.max_new_tokens],
                "end_id": [workload.end_id],
                **extra,
            }
            for ids in workload.prompt_ids
        ]
    }


def write_json(path: Path, data: object) -> Path:
    """Write ``data`` as JSON (UTF-8, not ASCII-escaped) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
