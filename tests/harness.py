"""Test support: a tiny checkpoint with known answers, a test repository, a running server.

Used by ``tests/integration`` and reusable by other test suites (the client's):
``start_test_server(build_test_repository(tmp))`` gives a ready tritonserver on free loopback
ports. A random-init model answers garbage, so span tests could not fail for the right reasons;
:func:`train_fixed_answer_model` instead fine-tunes a tiny T5 for a few dozen steps until it
answers every prompt of a task with one known sentence (:data:`FIXED_ANSWERS`), whatever the
input sentence. Served entities and offsets then have exact expected values.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import subprocess
from pathlib import Path
from typing import Any

from instructner.deploy.build import (
    BuildResult,
    BuildSettings,
    EngineVariant,
    build_repository,
    settings_from_args,
)
from instructner.deploy.server import ServerConfig, TritonServer, free_ports, serve_parser
from instructner.prompts import build_prompt, extract_answer, ner_answer, type_answer
from instructner.serving.limits import Limits

logger = logging.getLogger(__name__)

FIXTURE_LABELS = ("organization", "location", "person", "miscellaneous")
FIXTURE_TYPE_ENTITIES = ("Brussels",)
FIXED_ANSWERS = {
    "ner": ner_answer([("EU", "organization"), ("Brussels", "location")]),
    "extract": extract_answer(["EU", "Brussels"]),
    "type": type_answer([("Brussels", "location")]),
}
_TRAIN_SENTENCES = (
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn visited Brussels on Monday .",
    "The German and British farmers met the EU in Brussels .",
)
_CHECK_SENTENCES = (
    "EU officials met in Brussels on Monday .",
    "Nothing here mentions any of them .",
)
FIXTURE_SHAPE = {
    "d_model": 64,
    "d_ff": 128,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 2,
    "d_kv": 32,
}
# The integration tests' limits: small enough that a long sentence is split into word windows
# and an over-long text is easy to send.
TEST_LIMITS = Limits(max_text_chars=5000, max_input_tokens=128, max_output_tokens=48)
TEST_ENGINES = (
    EngineVariant("engine", "ctranslate2", "float32"),
    EngineVariant("engine_int8", "ctranslate2", "int8"),
    EngineVariant("engine_reference", "transformers", "float32"),
    EngineVariant("engine_constrained", "transformers", "float32", constrained=True),
)


def fixture_prompts(sentences: tuple[str, ...]) -> list[tuple[str, str]]:
    """Return (prompt, fixed answer) for every task on every sentence."""
    pairs = []
    for sentence in sentences:
        pairs.append((build_prompt("ner", sentence, FIXTURE_LABELS), FIXED_ANSWERS["ner"]))
        pairs.append((build_prompt("extract", sentence), FIXED_ANSWERS["extract"]))
        pairs.append(
            (
                build_prompt("type", sentence, FIXTURE_LABELS, FIXTURE_TYPE_ENTITIES),
                FIXED_ANSWERS["type"],
            )
        )
    return pairs


def train_fixed_answer_model(directory: Path, seed: int = 0, max_steps: int = 400) -> Path:
    """Fine-tune a tiny random-init T5 until it gives :data:`FIXED_ANSWERS`; save it.

    Takes a few seconds on one CPU core (about 30 steps).

    Raises:
        RuntimeError: the model did not learn the answers within ``max_steps`` (the message
            shows what it answered instead).

    """
    import torch

    from instructner.modeling import generate_answers, load_tokenizer, new_t5_model, save_model

    tokenizer = load_tokenizer()
    train = fixture_prompts(_TRAIN_SENTENCES)
    check = train + fixture_prompts(_CHECK_SENTENCES)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only add contention
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = new_t5_model(FIXTURE_SHAPE, seed=seed, dropout_rate=0.0)
            batch = tokenizer([p for p, _ in train], padding=True, return_tensors="pt")
            labels = tokenizer([a for _, a in train], padding=True, return_tensors="pt").input_ids
            labels[labels == tokenizer.pad_token_id] = -100
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
            answers: list[str] = []
            for step in range(1, max_steps + 1):
                model.train()
                loss = model(
                    input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels
                ).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if step % 10 == 0:
                    answers = generate_answers(model, tokenizer, [p for p, _ in check])
                    if answers == [a for _, a in check]:
                        logger.info("fixed-answer model learned in %d steps", step)
                        return save_model(model, tokenizer, directory)
    finally:
        torch.set_num_threads(threads)
    raise RuntimeError(
        f"the fixture model did not learn its answers in {max_steps} steps; it answered "
        f"{answers[:3]}"
    )


def build_test_repository(workdir: Path) -> BuildResult:
    """Train the fixture model and build a repository with three engine models.

    ``engine`` (CTranslate2 float32, the one ``instruction_ner`` calls), ``engine_int8`` and
    ``engine_reference`` (transformers) serve the same checkpoint.
    """
    checkpoint = train_fixed_answer_model(workdir / "fixture-model")
    settings = BuildSettings(
        model_dir=checkpoint,
        out_dir=workdir / "build",
        engines=TEST_ENGINES,
        pipeline_engine="engine",
        limits=TEST_LIMITS,
        max_batch_size=16,
        inter_threads=1,
        intra_threads=1,
        bls_instances=2,
    )
    return build_repository(settings)


def start_test_server(
    repository: Path,
    workdir: Path,
    timeout_s: float = 240.0,
    log_verbose: int = 0,
    open_internal_steps: bool = False,
) -> TritonServer:
    """Start tritonserver on free loopback ports and wait until every model is ready.

    The caller stops it with :meth:`TritonServer.stop`. ``open_internal_steps`` starts it
    without an internal key, so the pipeline steps answer direct calls (benchmarks only).

    Raises:
        ServerError: it exited or was not ready in time (the message holds the log tail).

    """
    http_port, grpc_port, metrics_port = free_ports(3)
    config = ServerConfig(
        repository=repository,
        workdir=workdir,
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        log_verbose=log_verbose,
    )
    if open_internal_steps:
        config = dataclasses.replace(config, internal_key=None)
    server = TritonServer(config)
    server.start()
    try:
        models = sorted(p.name for p in repository.iterdir() if (p / "config.pbtxt").is_file())
        server.wait_ready(timeout_s, models)
    except BaseException:
        server.stop()
        raise
    return server


def bytes_input(name: str, rows: list[list[bytes]]) -> Any:
    """Return a tritonclient.grpc BYTES input of shape ``[len(rows), len(rows[0])]``."""
    import numpy as np
    import tritonclient.grpc as grpcclient

    array = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=np.object_)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            array[r, c] = value
    tensor = grpcclient.InferInput(name, list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def ner_inputs(
    text: str | bytes,
    labels: tuple[str, ...] | list[str] | None = None,
    task: str | None = None,
    entities: tuple[str, ...] | list[str] | None = None,
) -> list[Any]:
    """Return the inputs of one ``instruction_ner`` request (batch 1); None leaves one out."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    inputs = [bytes_input("TEXT", [[raw]])]
    if task is not None:
        inputs.append(bytes_input("TASK", [[task.encode("utf-8")]]))
    if labels is not None:
        inputs.append(bytes_input("LABELS", [[label.encode("utf-8") for label in labels]]))
    if entities is not None:
        inputs.append(bytes_input("ENTITIES", [[e.encode("utf-8") for e in entities]]))
    return inputs


class _AnyScore:
    """Equals any entity score in [0, 1] (served scores follow the engine's float arithmetic)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, float) and 0.0 <= other <= 1.0

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<a score in [0, 1]>"


ANY_SCORE: Any = _AnyScore()

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
        from instructner.prompts import EXTRACT_INSTRUCTION, NER_INSTRUCTION, TYPE_INSTRUCTION
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
        from instructner.engine import Generated

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
