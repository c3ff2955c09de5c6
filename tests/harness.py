"""Test support: the testbed (:mod:`bench.testbed`), a gazetteer engine, `make serve`'s settings.

The fixture model, the test repository and the server start live in :mod:`bench.testbed`,
which the benchmarks use too; they are re-exported here for the tests.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

from bench.testbed import (
    ANY_SCORE,
    FIXED_ANSWERS,
    FIXTURE_LABELS,
    FIXTURE_SHAPE,
    FIXTURE_TYPE_ENTITIES,
    TEST_ENGINES,
    TEST_LIMITS,
    build_test_repository,
    bytes_input,
    fixture_prompts,
    ner_inputs,
    start_test_server,
    train_fixed_answer_model,
)
from instructner.deploy.build import BuildSettings, settings_from_args
from instructner.deploy.server import free_ports, serve_parser
from instructner.method.prompts import extract_answer, ner_answer
from instructner.serving.protos import ExtractionResult

# The README's serving command, run as written by the snippet tests (test_readme_examples.py)
SERVE_COMMAND = ["make", "serve"]
REPO = Path(__file__).resolve().parents[1]

__all__ = [
    "SERVE_COMMAND",
    "readme_snippet",
    "readme_snippets",
    "FIXTURE_LABELS",
    "FIXTURE_TYPE_ENTITIES",
    "FIXED_ANSWERS",
    "FIXTURE_SHAPE",
    "TEST_LIMITS",
    "TEST_ENGINES",
    "fixture_prompts",
    "train_fixed_answer_model",
    "build_test_repository",
    "start_test_server",
    "bytes_input",
    "ner_inputs",
    "ANY_SCORE",
]

DEFAULT_GAZETTEER = {"EU": "organization", "Brussels": "location", "Peter Blackburn": "person"}
DEFAULT_TOKEN_PROB = 0.9


class GazetteerEngine:
    """A stand-in engine that answers like a perfect model over a small gazetteer.

    It decodes each prompt, finds the gazetteer's entries in the prompt's sentence and writes
    the answer the task asks for (only labels among the options; for typing only the listed
    entities), then returns its token ids. Unit tests use it to check the whole serving path
    without a trained model. ``answers`` records every (prompt, answer) it produced.

    Log-probabilities are controlled: each token that writes (part of) a gazetteer entry's
    text has probability ``confidence[entry]`` (default :data:`DEFAULT_TOKEN_PROB`), every
    other token :data:`DEFAULT_TOKEN_PROB`.
    """

    kind = "gazetteer"

    def __init__(
        self,
        tokenizer: Any,
        gazetteer: dict[str, str] | None = None,
        confidence: dict[str, float] | None = None,
    ) -> None:
        from instructner.modeling import VOCAB_SIZE

        self.tokenizer = tokenizer
        self.gazetteer = dict(DEFAULT_GAZETTEER if gazetteer is None else gazetteer)
        self.confidence = dict(confidence or {})
        self.vocab_size = VOCAB_SIZE
        self.decoder_start_token_id = tokenizer.pad_token_id
        self.eos_token_id = tokenizer.eos_token_id
        self.compute_type = "none"
        self.answers: list[tuple[str, str]] = []
        self.batches: list[int] = []

    def answer(self, prompt: str) -> str:
        """Return the answer sentence for a decoded prompt."""
        from instructner.method.prompts import (
            EXTRACT_INSTRUCTION,
            NER_INSTRUCTION,
            TYPE_INSTRUCTION,
        )
        from instructner.serving.windows import entity_occurrences

        sentence = prompt.removeprefix("Sentence: ").split(" Instruction: ")[0]
        options = [o.strip() for o in prompt.split(" Options: ")[-1].split(",")]
        found = sorted(
            (spans[0][0], text, label)
            for text, label in self.gazetteer.items()
            if (spans := entity_occurrences(sentence, text))
        )
        if EXTRACT_INSTRUCTION in prompt:
            return extract_answer([text for _, text, _ in found])
        if TYPE_INSTRUCTION in prompt:
            listed = prompt.split(TYPE_INSTRUCTION)[1].split(" Options: ")[0].split(", ")
            found = [f for f in found if f[1] in listed]
        elif NER_INSTRUCTION not in prompt:
            raise ValueError(f"not a prompt of this project: {prompt!r}")
        return ner_answer([(text, label) for _, text, label in found if label in options])

    def log_probs(self, answer: str, tokens: list[int]) -> list[float]:
        """Return the controlled log-probability of each answer token (see the class doc)."""
        import math

        _, spans = self.tokenizer.decode_with_spans(tokens)
        mentions = []  # (start, end, probability) of every gazetteer text written in the answer
        for text in self.gazetteer:
            at = answer.find(text)
            while at != -1:
                mentions.append((at, at + len(text), self.confidence.get(text, DEFAULT_TOKEN_PROB)))
                at = answer.find(text, at + 1)
        values = []
        for span in spans:
            prob = DEFAULT_TOKEN_PROB
            for start, end, mention_prob in mentions:
                if span is not None and span[0] < end and span[1] > start:
                    prob = mention_prob
            values.append(math.log(prob))
        return values

    def close(self) -> None:
        """Nothing to release."""

    def generate(
        self, inputs: Any, max_new_tokens: Any, end_id: int, return_log_probs: bool = False
    ) -> list[Any]:
        """Answer each prompt; cut at ``max_new_tokens`` like a real engine."""
        from instructner.serving.engine import Generated

        self.batches.append(len(inputs))
        results = []
        for ids, limit in zip(inputs, max_new_tokens, strict=True):
            prompt = self.tokenizer.decode(ids)
            answer = self.answer(prompt)
            self.answers.append((prompt, answer))
            tokens = self.tokenizer.encode(answer)[:-1]  # without the end token
            log_probs = self.log_probs(answer, tokens)[:limit] if return_log_probs else None
            results.append(Generated(tokens[:limit], len(tokens) < limit, log_probs))
        return results


REPO_ROOT = Path(__file__).resolve().parents[1]


def make_serve_arguments(**variables: str) -> list[str]:
    """Return the launcher arguments ``make serve`` would run (``make -n``: nothing runs)."""
    assignments = [f"{name}={value}" for name, value in variables.items()]
    printed = subprocess.run(
        ["make", "-n", "--no-print-directory", "serve", *assignments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")  # the recipe's continued lines as one
    line = next(line for line in printed.splitlines() if "instructner.cli serve" in line)
    words = shlex.split(line)
    return words[words.index("serve") + 1 :]


def make_serve_settings(model_dir: Path, out_dir: Path) -> BuildSettings:
    """Return the build settings of ``make serve MODEL_DIR=model_dir BUILD_OUT=out_dir``."""
    arguments = make_serve_arguments(MODEL_DIR=str(model_dir), BUILD_OUT=str(out_dir))
    return settings_from_args(serve_parser().parse_args(arguments))


def free_port() -> int:
    """Return one TCP port that is free on loopback right now."""
    return free_ports(1)[0]


def result_to_dict(result: ExtractionResult) -> dict[str, object]:
    """Return a result as plain JSON-ready values (entities as text, label, start, end, score)."""
    return {
        "task": result.task,
        "entities": [
            {
                "text": e.text,
                "label": e.label if e.HasField("label") else None,
                "start": e.start,
                "end": e.end,
                "score": e.score if e.HasField("score") else None,
                **({"model_label": e.model_label} if e.HasField("model_label") else {}),
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


def readme_snippets(markdown: Path) -> dict[tuple[str, str, str], str]:
    """Return each fenced block of ``markdown`` by (file from the repo, heading, language)."""
    text = markdown.read_text(encoding="utf-8")
    found: dict[tuple[str, str, str], str] = {}
    heading = ""
    for match in re.finditer(r"^(#{1,4} [^\n]+)$|^```(\w+)\n(.*?)^```$", text, re.M | re.S):
        if match.group(1):
            heading = match.group(1).strip()
            continue
        key = (str(markdown.resolve().relative_to(REPO)), heading, match.group(2))
        assert key not in found, f"two {key[2]} blocks under {heading!r}: give each a heading"
        found[key] = match.group(3)
    return found


def readme_snippet(file: str, heading: str, language: str) -> str:
    """Return the ``language`` block under ``heading`` of the repo's markdown ``file``."""
    return readme_snippets(REPO / file)[(file, heading, language)]
