"""The served paths: ``instruction_ner`` and the ``engine`` model under perf_analyzer.

The server is the project's own launcher (:mod:`instructner.deploy.server`) on free loopback
ports, stopped by its PID. Before the load test, every workload sentence goes once through
``instruction_ner`` (this is the warm-up, and it yields the served path's quality from the
RESULT entities the server returns). Each concurrency level measures the engine model alone
and then ``instruction_ner``, so slow drifts in the machine's load hit both alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import CpuMonitor, QuietGate
from bench.perf import PerfAnalyzer, PerfLevel
from bench.profiles import PerfSettings
from bench.quality import Quality, score_entities
from bench.serverstats import ModelDelta, Snapshot, process_tree_rss, snapshot_delta
from bench.serverstats import snapshot_from_json as _snapshot
from bench.testbed import start_test_server
from bench.workload import TASK, Workload
from instructner.deploy.server import TritonServer

logger = logging.getLogger(__name__)

ENSEMBLE = "instruction_ner"
ENGINE = "engine"
# instruction_ner with RETURN_SCORES false: the same model, its cost without entity scores
ENSEMBLE_NO_SCORES = "instruction_ner_no_scores"
MODELS = (ENSEMBLE, ENGINE)
# measured path -> the model perf_analyzer calls
TARGETS = {ENGINE: ENGINE, ENSEMBLE: ENSEMBLE, ENSEMBLE_NO_SCORES: ENSEMBLE}


@dataclass
class ServedResult:
    """Everything measured against the running server."""

    levels: list[PerfLevel] = field(default_factory=list)
    level_stats: list[dict[str, Any]] = field(default_factory=list)
    quality: Quality | None = None
    output_tokens: list[int] = field(default_factory=list)
    windows: list[int] = field(default_factory=list)  # engine calls per sentence
    # extra rounds of the concurrency-1 pair after the table's levels: model -> level, per round
    c1_rounds: list[dict[str, Any]] = field(default_factory=list)
    quality_pass_s: float = 0.0
    rss_after_warmup: dict[str, Any] = field(default_factory=dict)
    rss_after_run: dict[str, Any] = field(default_factory=dict)
    server_version: str = ""
    ready_s: float = 0.0
    exit_code: int | None = None


def start_server(repository: Path, workdir: Path) -> TritonServer:
    """Start tritonserver on free loopback ports and wait until every model is ready.

    The launcher is the one the integration tests use (paths made absolute: the server runs
    in ``workdir``). Its internal steps are open to direct calls, so perf_analyzer can measure
    the engine model alone (its ``--request-parameter`` does not reach a python model's
    request parameters over gRPC in 2.51); the server listens on loopback only, for the run.
    """
    return start_test_server(
        repository.resolve(), workdir.resolve(), timeout_s=300, open_internal_steps=True
    )


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.array([[v.encode("utf-8") for v in values]], dtype=np.object_)


def served_results(
    url: str, texts: Sequence[str], labels: Sequence[str], concurrency: int
) -> list[Any]:
    """Send every text to ``instruction_ner`` (task ner); return the ExtractionResult messages.

    Raises:
        tritonclient.utils.InferenceServerException: a request failed.

    """
    import tritonclient.grpc as grpcclient

    from instructner.serving.protos import ExtractionResult

    client = grpcclient.InferenceServerClient(url=url)

    def one(text: str) -> ExtractionResult:
        inputs = []
        for name, array in (
            ("TEXT", _strings([text])),
            ("TASK", _strings([TASK])),
            ("LABELS", _strings(list(labels))),
        ):
            tensor = grpcclient.InferInput(name, list(array.shape), "BYTES")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        response = client.infer(
            ENSEMBLE,
            inputs,
            outputs=[grpcclient.InferRequestedOutput("RESULT")],
            client_timeout=600,
        )
        return ExtractionResult.FromString(response.as_numpy("RESULT")[0, 0])

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(one, texts))
    finally:
        client.close()


def served_answers(
    url: str, workload: Workload, concurrency: int
) -> tuple[list[list[tuple[int, int, str]]], list[int], list[int]]:
    """Send every sentence to ``instruction_ner``; return entities, generated tokens, windows.

    Raises:
        tritonclient.utils.InferenceServerException: a request failed.

    """
    results = served_results(url, workload.texts, workload.labels, concurrency)
    entities = [[(e.start, e.end, e.label) for e in r.entities] for r in results]
    tokens = [sum(w.output_tokens for w in r.windows) for r in results]
    return entities, tokens, [len(r.windows) for r in results]


def server_statistics(url: str, headers: Mapping[str, str]) -> Snapshot:
    """Read the statistics (an admin endpoint: ``headers`` carry the server's admin key)."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url=url)
    try:
        return _snapshot(client.get_inference_statistics(headers=dict(headers), as_json=True))
    finally:
        client.close()


def _server_version(url: str) -> str:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url=url)
    try:
        return str(client.get_server_metadata(as_json=True).get("version", ""))
    finally:
        client.close()


def run_served(
    monitor: CpuMonitor,
    server: TritonServer,
    analyzer: PerfAnalyzer,
    workload: Workload,
    inputs: dict[str, Path],
    concurrency: Sequence[int],
    settings: PerfSettings,
    quality_concurrency: int,
    on_level: Callable[[PerfLevel], None] = lambda level: None,
    gate: QuietGate | None = None,
    c1_rounds: int = 1,
) -> ServedResult:
    """Warm up and score through ``instruction_ner``, then measure every level of both models.

    With ``c1_rounds`` > 1 (and concurrency 1 among the levels), the engine alone and
    ``instruction_ner`` are measured at concurrency 1 that many times in all, alternating, so
    the p99 ratio rests on more than one draw.
    """
    url = server.config.grpc_url
    admin = server.config.admin.grpc_metadata()
    assert server.pid is not None
    result = ServedResult(server_version=_server_version(url))
    started = time.perf_counter()
    entities, result.output_tokens, result.windows = served_answers(
        url, workload, quality_concurrency
    )
    result.quality_pass_s = time.perf_counter() - started
    result.quality = score_entities(workload.sentences, entities, workload.verbalizer)
    result.rss_after_warmup = process_tree_rss(server.pid)

    def measure(model: str, level_concurrency: int, tag: str = "") -> tuple[PerfLevel, Any]:
        # one perf_analyzer level of one path, behind the quiet gate, with its machine load
        phase = f"{model}_c{level_concurrency}{tag}"
        if gate:
            gate.wait(phase)
        monitor.start(phase)
        level = analyzer.measure(
            TARGETS[model], inputs[model], level_concurrency, settings, tag=tag
        )
        return replace(level, model=model), monitor.stop(phase)

    for level_concurrency in concurrency:
        for model in (path for path in TARGETS if path in inputs):
            before = server_statistics(url, admin)
            level, load = measure(model, level_concurrency)
            deltas: dict[str, ModelDelta] = snapshot_delta(before, server_statistics(url, admin))
            result.levels.append(level)
            result.level_stats.append(
                {
                    "model": model,
                    "concurrency": level_concurrency,
                    "load": load,
                    "models": {name: d.to_dict() for name, d in sorted(deltas.items())},
                }
            )
            on_level(level)
    pair = [model for model in (ENGINE, ENSEMBLE) if model in inputs]
    extra_rounds = range(2, c1_rounds + 1) if 1 in concurrency else range(0)
    for extra in extra_rounds:
        measured: dict[str, Any] = {"round": extra}
        for model in pair:
            level, load = measure(model, 1, tag=f"_round{extra}")
            measured[model] = {**level.to_dict(), "load": load}
        result.c1_rounds.append(measured)
    result.rss_after_run = process_tree_rss(server.pid)
    return result
