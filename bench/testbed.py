"""A testbed: a tiny checkpoint with known answers, a test repository, a running server.

Used by ``tests/`` and by the benchmarks (``bench.served``, ``bench.soak``, ``bench.hostile``), so
that bench never imports the tests:
``start_test_server(build_test_repository(tmp))`` gives a ready tritonserver on free loopback
ports. A random-init model answers garbage, so span tests could not fail for the right reasons;
:func:`train_fixed_answer_model` instead fine-tunes a tiny T5 for a few dozen steps until it
answers every prompt of a task with one known sentence (:data:`FIXED_ANSWERS`), whatever the
input sentence. Served entities and offsets then have exact expected values.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from instructner.deploy.build import (
    BuildResult,
    BuildSettings,
    EngineVariant,
    build_repository,
)
from instructner.deploy.server import ServerConfig, TritonServer
from instructner.method.prompts import build_prompt, extract_answer, ner_answer, type_answer
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
    config = ServerConfig.on_free_ports(
        repository=repository,
        workdir=workdir,
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
