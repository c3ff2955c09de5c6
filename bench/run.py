"""Run the benchmark: ``python -m bench [--smoke]`` (``make bench`` / ``make bench-smoke``).

Order: build the model repository (the serving build step, in its own folder), load the
workload, run the in-process paths while no server runs, then start tritonserver, warm it up
(scoring its answers), sweep perf_analyzer over the concurrency levels, stop the server by its
PID, and write ``bench/results/<timestamp>-<profile>/``: raw perf_analyzer CSVs and logs,
``summary.json``, ``table.md`` and ``throughput_vs_p99.png``. Among the in-process paths, the
limit (GEMM peak with torch, the engine's thread layouts, :mod:`bench.limit`) is measured
before our engine in-process, which then runs at the server's layout and at the best layout
the sweep found; after the concurrency sweep, the same server is measured against document
length and label count (:mod:`bench.scaling`), plotted in ``scaling_*.png``. Figures and the
table are optional (a failure is logged and recorded in summary.json). The last line printed
is ``speedup_vs_transformers_batch1=<r1> speedup_vs_transformers_best=<r2>``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bench import baselines, limit, machine, pypi_package, report, scaling, served
from bench.flops import ModelShape, total_ops
from bench.paths import (
    INPROCESS_BATCHMAX_BEST_LAYOUT,
    INPROCESS_BATCHMAX_PATHS,
    PathResult,
    Unavailable,
)
from bench.perf import PerfAnalyzer, PerfLevel, find_perf_analyzer, library_dir
from bench.plot import plot_summary, scaling_plots
from bench.profiles import PROFILES, Profile
from bench.workload import (
    CORPUS,
    SPLIT,
    Workload,
    engine_input_data,
    ensemble_input_data,
    load_workload,
    write_json,
)
from instructner.deploy.build import BuildResult, BuildSettings, ensure_repository, usable_cores
from instructner.method.types import Sentence
from instructner.research.data import load_corpus
from instructner.serving.limits import Limits
from instructner.serving.tokenizer import PromptTokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
# A random-init model does not emit its end token reliably: every path generates this many
# tokens (the stand-in emits no end token this early, which the summary verifies per path).
UNTRAINED_OUTPUT_TOKENS = 24
BUSY_SHARE = 0.2  # above this share taken by other processes, wait (within a budget) and warn


def say(message: str) -> None:
    """Print a progress line."""
    print(f"bench: {message}", flush=True)


TUNABLE = (
    "max_batch_size",
    "engine_instances",
    "inter_threads",
    "intra_threads",
    "bls_instances",
    "engine_queue_delay_us",
    "bls_queue_delay_us",
)


def parse_overrides(items: Sequence[str]) -> dict[str, int]:
    """Parse ``--set NAME=INT`` items into serving build settings.

    Raises:
        ValueError: an item is not ``NAME=INT`` or names a setting that cannot be tuned here.

    """
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in TUNABLE:
            raise ValueError(
                f"--set {item!r}: expected NAME=INT with NAME one of {', '.join(TUNABLE)}"
            )
        try:
            overrides[name] = int(value)
        except ValueError:
            raise ValueError(f"--set {item!r}: {value!r} is not an integer") from None
    return overrides


def _build(
    model_dir: Path, out_dir: Path, overrides: dict[str, int]
) -> tuple[BuildResult, BuildSettings]:
    trained = (model_dir / "config.json").is_file()
    limits = Limits() if trained else Limits(max_output_tokens=UNTRAINED_OUTPUT_TOKENS)
    settings = BuildSettings(model_dir=model_dir, out_dir=out_dir, limits=limits)
    settings = replace(settings, **overrides)  # type: ignore[arg-type]
    return ensure_repository(settings), settings


def _model_record(build: BuildResult, parameters: int) -> dict[str, Any]:
    config = json.loads((build.checkpoint / "config.json").read_text(encoding="utf-8"))
    shape = {k: config.get(k) for k in ("d_model", "d_ff", "num_layers", "num_decoder_layers")}
    size = (
        f"T5 d_model {shape['d_model']}, {shape['num_layers']}+{shape['num_decoder_layers']} "
        f"layers, {parameters / 1e6:.0f} M parameters"
    )
    if build.trained:
        description = f"trained checkpoint {build.manifest.get('model_dir')} ({size})"
    else:
        description = (
            f"random-init stand-in ({size}) made by the serving build step, because "
            f"{build.manifest.get('model_dir')} holds no trained checkpoint; its F1 is ~0 by "
            "construction (it has learned nothing), reported only to show every path agrees"
        )
    return {
        "checkpoint": str(build.checkpoint),
        "trained": build.trained,
        "shape": shape,
        "parameters": parameters,
        "description": description,
    }


def generation_record(
    trained: bool,
    max_new_tokens: int,
    token_counts: Mapping[str, Sequence[int]],
    windows: Mapping[str, Sequence[int]],
) -> dict[str, Any]:
    """Describe how much every path generated, and whether that was equal per engine call.

    ``token_counts`` holds the generated tokens per sentence of every path; ``windows`` the
    engine calls per sentence of the paths that run the serving pipeline (one elsewhere).
    """
    per_call = {
        name: sorted({t // w for t, w in zip(c, windows.get(name, [1] * len(c)), strict=True)})
        for name, c in token_counts.items()
    }
    equal = all(c == [max_new_tokens] for c in per_call.values())
    sentences = max((len(c) for c in token_counts.values()), default=0)
    split = max((sum(1 for w in ws if w > 1) for ws in windows.values()), default=0)
    if trained:
        note = (
            f"greedy, up to {max_new_tokens} new tokens per engine call, stopping at the end token."
        )
    elif equal:
        note = (
            f"greedy, {max_new_tokens} new tokens forced per engine call in every path (the random "
            f"model emits no end token within {max_new_tokens} tokens on these sentences: verified "
            "from every path's output)."
        )
    else:
        note = (
            f"greedy, up to {max_new_tokens} new tokens per engine call; NOT equal across paths "
            "(tokens per call: " + "; ".join(f"{name} {c}" for name, c in per_call.items()) + ")."
        )
    if trained:
        note += (
            f" {split} of {sentences} CoNLL lines hold more than one sentence and took two or "
            "more engine calls in the served path and in our engine in-process (one sentence per "
            "window). Those two stop an answer that loops (one stretch of tokens four times in a "
            "row, as evaluation does); the transformers and PyPI baselines run it to the limit, so "
            "they generate more tokens per sentence (column) for the same entities."
        )
    elif split:
        extra = {
            name: sum(c) / (max_new_tokens * len(c)) - 1
            for name, c in token_counts.items()
            if name in windows
        }
        note += (
            f" The serving pipeline reads a text one sentence per window: {split} of {sentences} "
            "CoNLL lines hold more than one sentence and took two or more engine calls in the "
            f"served path and in our engine in-process, which therefore generated up to "
            f"{max(extra.values()):.0%} more tokens than the baselines (tokens/sentence column); "
            "this works against them. The engine-alone perf_analyzer runs read every line as one "
            "prompt."
        )
    return {
        "max_new_tokens": max_new_tokens,
        "greedy": True,
        "forced_equal_tokens": equal and not trained,
        "tokens_per_engine_call": per_call,
        "multi_window_sentences": split,
        "note": note,
    }


def _serving_record(settings: BuildSettings) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(json.dumps(asdict(settings), default=str))  # paths
    return record


def measure_limit(
    profile: Profile,
    engine_dir: Path,
    settings: BuildSettings,
    workload: Workload,
    tokenizer: PromptTokenizer,
    pool: Sequence[Sentence],
    shape: ModelShape,
    monitor: machine.CpuMonitor,
    gate: machine.QuietGate,
) -> dict[str, Any]:
    """Measure the GEMM peak and the engine's thread layouts; return the limit record.

    The in-process pipeline paths run afterwards (one at the best layout found here) and are
    added to the record with :func:`bench.limit.add_pipeline`.
    """
    cores = usable_cores()
    gate.wait("gemm_peak")
    monitor.start("gemm_peak")
    peak = limit.gemm_peak(profile.gemm_size, cores, profile.gemm_seconds)
    load = monitor.stop("gemm_peak")
    for record in peak.values():
        record["load"] = load
    sentences = pool[: profile.sweep_sentences]
    prompts = limit.window_prompts(
        [s.text for s in sentences], workload.labels, tokenizer, settings.limits
    )
    default = server_layout(settings)
    described = (
        f"{settings.engine_instances} engine instances × inter_threads {settings.inter_threads} "
        f"× intra_threads {settings.intra_threads}, in one process inter {default[0]} × intra "
        f"{default[1]}"
    )
    layouts = limit.thread_layouts(cores)
    if default not in layouts:
        layouts.append(default)
    compute_type = settings.engines[0].compute_type
    sweep = limit.sweep_threads(
        engine_dir,
        compute_type,
        prompts,
        len(sentences),
        workload.end_id,
        workload.max_new_tokens,
        layouts,
        profile.sweep_batch_sizes,
        profile.sweep_repeats,
        shape,
        monitor,
        gate,
    )
    return limit.limit_record(shape, compute_type, peak, sweep, default, described)


def server_layout(settings: BuildSettings) -> tuple[int, int]:
    """Return the server's engine threads as one translator: ``(inter, intra)``.

    N engine instances of ``inter_threads`` workers ~ one translator of N × inter_threads
    workers (a worker takes its own part of a batch, as an instance takes its own batch).
    """
    return settings.engine_instances * settings.inter_threads, settings.intra_threads


T = TypeVar("T")


def attempt(name: str, action: Callable[[], T]) -> tuple[T | None, str | None]:
    """Return ``(action(), None)``, or ``(None, error)`` when it fails (logged and said)."""
    try:
        return action(), None
    except Exception as error:  # any failure: the rest of the run is still worth writing
        logging.getLogger(__name__).exception("the %s failed", name)
        say(f"WARNING: the {name} failed: {type(error).__name__}: {error}")
        return None, f"{type(error).__name__}: {error}"


def guarded(name: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Return ``measure()``, or ``{"error": ...}`` when it fails: the run's other figures stay."""
    result, error = attempt(f"{name} measurement", measure)
    return {"error": error} if result is None else result


def run_engine_paths(
    engine_dir: Path,
    tokenizer_dir: Path,
    settings: BuildSettings,
    workload: Workload,
    best: tuple[int, int] | None,
    monitor: machine.CpuMonitor,
    gate: machine.QuietGate,
) -> list[PathResult | Unavailable]:
    """Run our engine in-process at the server's layout, and at the sweep's best layout too.

    At the server's layout: batch 1 and batch max; at ``best`` (the thread sweep's best
    layout, one translator of inter × intra): batch max, only when it is another layout. A
    failure of the second is recorded as an unavailable path. The faster batch-max path is
    the reference of the served path (bench/report/ratios.py).
    """
    engine = settings.engines[0]
    inter, intra = server_layout(settings)
    if best is None:
        layout = "the server's layout (the thread sweep found no best layout to try)"
    elif best == (inter, intra):
        layout = "the server's layout, also the best layout of the thread sweep"
    else:
        layout = "the server's layout"
    inprocess = functools.partial(
        baselines.run_engine_inprocess,
        engine_dir,
        tokenizer_dir,
        settings.limits,
        workload,
        engine.compute_type,
        max_batch_size=settings.max_batch_size,
        monitor=monitor,
        gate=gate,
    )
    paths: list[PathResult | Unavailable] = []
    paths.extend(
        inprocess(
            inter_threads=settings.inter_threads,
            intra_threads=settings.intra_threads,
            engine_instances=settings.engine_instances,
            layout=layout,
        )
    )
    if best is None or best == (inter, intra):
        return paths
    described = f"best layout inter {best[0]} × intra {best[1]}"
    result, error = attempt(
        f"in-process run at the {described}",
        lambda: inprocess(
            inter_threads=best[0],
            intra_threads=best[1],
            batch_one=False,
            name=INPROCESS_BATCHMAX_BEST_LAYOUT,
            layout=f"the best layout of the thread sweep (bench/limit.py), not the server's "
            f"inter {inter} × intra {intra}",
            title_note=described,
        ),
    )
    if result is None:
        title = f"our engine in-process, batch max, {described}"
        paths.append(Unavailable(INPROCESS_BATCHMAX_BEST_LAYOUT, title, str(error)))
    else:
        paths.extend(result)
    return paths


def add_pipelines(
    record: dict[str, Any], paths: Sequence[PathResult | Unavailable], shape: ModelShape
) -> None:
    """Add the achieved rate of every in-process batch-max path to the limit record."""
    if "error" in record:
        return
    for path in paths:
        if isinstance(path, PathResult) and path.name in INPROCESS_BATCHMAX_PATHS:
            if path.engine_calls:
                gop = total_ops(shape, path.engine_calls) / 1e9
                limit.add_pipeline(record, path.title, path.seconds, gop, path.layout)


def write_plots(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """Draw every figure the summary has data for, each on its own.

    One that fails is logged and recorded, and the others are still drawn. Return
    ``{"written": [file names], "errors": {file name: error}}``.
    """
    jobs: dict[str, Callable[[Path], Path]] = {
        report.PLOT: functools.partial(plot_summary, summary),
        **scaling_plots(summary),
    }
    record: dict[str, Any] = {"written": [], "errors": {}}
    for name, draw in jobs.items():
        written, error = attempt(f"plot {name}", functools.partial(draw, out / name))
        if written is None:
            record["errors"][name] = error
        else:
            record["written"].append(name)
    return record


def _say_limit(record: Mapping[str, Any]) -> None:
    for entry in record.get("achieved", []):
        fraction = entry.get("fraction_of_peak")
        share = "?" if fraction is None else f"{fraction * 100:.2f}%"
        gops = "?" if entry.get("gops") is None else f"{entry['gops']:.2f}"
        say(f"achieved {gops} GOP/s = {share} of the GEMM peak: {entry['source']}")
    if "thread_sweep" in record:
        say(record["thread_sweep"]["text"])


def _say_scaling_point(record: Mapping[str, Any]) -> None:
    if "error" in record:
        say(
            f"scaling {record['sentences_per_request']} sentences/request, "
            f"{record['label_count']} labels: FAILED ({record['error']}); the sweep goes on"
        )
        return
    p50, p99 = record.get("p50_ms"), record.get("p99_ms")
    latency = "unstable" if p50 is None or p99 is None else f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    say(
        f"scaling {record['sentences_per_request']} sentences/request, "
        f"{record['label_count']} labels ({record['prompt_tokens_per_window']:.0f} prompt "
        f"tokens/window): {record['requests_per_s']:.2f} requests/s, "
        f"{record['sentences_per_s']:.1f} sentences/s, {latency}"
    )


@dataclass
class _Run:
    """One benchmark run's settings and what its phases hand on to the next."""

    profile: Profile
    build_dir: Path
    results_root: Path
    overrides: dict[str, int]
    started: datetime
    out: Path
    monitor: machine.CpuMonitor
    gate: machine.QuietGate
    build: BuildResult | None = None
    settings: BuildSettings | None = None
    workload: Workload | None = None
    inputs: dict[str, Path] = field(default_factory=dict)
    paths: list[PathResult | Unavailable] = field(default_factory=list)
    parameters: int = 0
    pool: list[Sentence] = field(default_factory=list)
    shape: ModelShape | None = None
    limit_result: dict[str, Any] = field(default_factory=dict)


def _start_run(
    profile: Profile, build_dir: Path, results_root: Path, overrides: dict[str, int]
) -> _Run:
    """Make the results folder and wait (within the profile's budget) for a quiet machine."""
    started = datetime.now(UTC)
    out = (results_root / f"{started:%Y%m%d-%H%M%S}-{profile.name}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    monitor = machine.CpuMonitor(probe=machine.speed_probe)
    say(f"profile {profile.name}; results in {out}")
    gate = machine.QuietGate(
        monitor,
        profile.quiet_wait_s,
        BUSY_SHARE,
        speed_probe=machine.speed_probe,
        speed_budget_s=profile.speed_wait_s,
    )
    others = gate.wait("start")
    if others > BUSY_SHARE:
        say(
            f"WARNING: other processes use {others:.0%} of the machine: the figures will not be "
            "representative (torch suffers most); see `others %` and `load` in summary.json"
        )
    return _Run(profile, build_dir, results_root, overrides, started, out, monitor, gate)


def _prepare(run: _Run, model_dir: Path) -> None:
    """Build the repository and write the workload's perf_analyzer inputs."""
    run.monitor.start("build")
    run.build, run.settings = _build(model_dir, run.build_dir, run.overrides)
    if run.overrides:
        say(f"serving settings changed from the shipped defaults: {run.overrides}")
    run.monitor.stop("build")
    if run.build.warning:
        say(run.build.warning)
    tokenizer = PromptTokenizer(run.build.checkpoint)
    workload = load_workload(run.profile.sentences, tokenizer, run.settings.limits)
    run.workload = workload
    run.inputs = {
        served.ENSEMBLE: write_json(
            run.out / "input_instruction_ner.json", ensemble_input_data(workload)
        ),
        served.ENSEMBLE_NO_SCORES: write_json(
            run.out / "input_instruction_ner_no_scores.json",
            ensemble_input_data(workload, scores=False),
        ),
        served.ENGINE: write_json(run.out / "input_engine.json", engine_input_data(workload)),
    }
    say(
        f"{len(workload.sentences)} {CORPUS} {SPLIT} sentences, "
        f"{workload.mean_prompt_tokens():.1f} prompt tokens on average, "
        f"{workload.max_new_tokens} new tokens at most"
    )


def _run_baselines(run: _Run) -> None:
    """Run transformers and the PyPI package in-process, while no server runs."""
    assert run.build is not None and run.workload is not None
    hf_paths, run.parameters = baselines.run_transformers(
        run.build.checkpoint,
        run.workload,
        run.profile.transformers_batch_sizes,
        run.monitor,
        run.gate,
    )
    run.paths.extend(hf_paths)
    for path in hf_paths:
        say(f"{path.title}: {path.throughput:.2f} sentences/s")
    run.gate.wait("pypi_package")
    run.monitor.start("pypi_package")
    package = pypi_package.run_package(
        run.build.checkpoint, run.workload, run.build_dir / "vendor", run.out
    )
    package_load = run.monitor.stop("pypi_package")
    run.paths.append(package)
    if isinstance(package, PathResult):
        package.load = package_load  # includes the child's start and model load
        say(f"{package.title}: {package.throughput:.2f} sentences/s")
    else:
        say(f"{package.title}: not run: {package.reason}")


def _run_limit_and_engine(run: _Run) -> None:
    """Measure the limit, then our engine in-process at the server's and the best layout.

    The limit first: its thread sweep finds the machine's best layout, at which our engine
    in-process then runs too, so the served path is compared with the best the engine does.
    """
    assert run.build is not None and run.settings is not None and run.workload is not None
    profile, tokenizer_dir = run.profile, run.build.checkpoint
    engine_dir = run.build_dir / "engines" / "ctranslate2"
    shape = ModelShape.from_checkpoint(run.build.checkpoint)
    run.shape = shape
    run.pool = load_corpus(CORPUS, SPLIT)[: max(profile.scaling_sentences, profile.sweep_sentences)]
    run.monitor.start("limit")
    settings, workload = run.settings, run.workload
    run.limit_result = guarded(
        "limit",
        lambda: measure_limit(
            profile,
            engine_dir,
            settings,
            workload,
            PromptTokenizer(tokenizer_dir),
            run.pool,
            shape,
            run.monitor,
            run.gate,
        ),
    )
    run.monitor.stop("limit")
    best = None if "error" in run.limit_result else limit.best_layout(run.limit_result)
    engine_paths = run_engine_paths(
        engine_dir, tokenizer_dir, settings, workload, best, run.monitor, run.gate
    )
    run.paths.extend(engine_paths)
    for engine_path in engine_paths:
        if isinstance(engine_path, PathResult):
            say(
                f"{engine_path.title}: {engine_path.throughput:.2f} sentences/s "
                f"({engine_path.layout})"
            )
        else:
            say(f"{engine_path.title}: not run: {engine_path.reason}")
    add_pipelines(run.limit_result, engine_paths, shape)
    _say_limit(run.limit_result)


def _say_level(level: PerfLevel) -> None:
    p99 = "unstable" if level.p99_us is None else f"p99 {level.p99_us / 1000:.0f} ms"
    say(f"{level.model} c={level.concurrency}: {level.throughput:.2f} sentences/s, {p99}")


@dataclass
class _Served:
    result: served.ServedResult
    scaling: dict[str, Any]
    exit_code: int | None


def _run_server(run: _Run) -> _Served:
    """Serve the repository: the concurrency sweep, then scaling; stop the server by PID."""
    assert run.build is not None and run.settings is not None and run.workload is not None
    assert run.shape is not None
    binary = find_perf_analyzer()
    say(f"starting tritonserver ({run.build.repository})")
    server = served.start_server(run.build.repository, run.build_dir.resolve() / "server")
    try:
        say(f"tritonserver pid {server.pid} ready on {server.config.grpc_url}")
        analyzer = PerfAnalyzer(
            binary=binary,
            libraries=library_dir(run.build_dir / "perf-libs"),
            url=server.config.grpc_url,
            log_dir=run.out,
            headers=server.config.admin.grpc_metadata(),
        )
        profile, monitor, gate = run.profile, run.monitor, run.gate
        monitor.start("served")
        served_result = served.run_served(
            monitor,
            server,
            analyzer,
            run.workload,
            run.inputs,
            profile.concurrency,
            profile.perf,
            profile.quality_concurrency,
            on_level=_say_level,
            gate=gate,
            c1_rounds=profile.c1_rounds,
        )
        monitor.stop("served")
        monitor.start("scaling")
        shape, max_chars = run.shape, run.settings.limits.max_text_chars
        scaling_result = guarded(
            "scaling",
            lambda: scaling.run_scaling(
                profile,
                run.pool[: profile.scaling_sentences],
                shape,
                max_chars,
                server.config.grpc_url,
                server.config.admin.grpc_metadata(),
                analyzer,
                run.out,
                monitor,
                gate,
                on_point=_say_scaling_point,
            ),
        )
        monitor.stop("scaling")
        for growth in scaling_result.get("growth", {}).values():
            say(growth["text"])
    finally:
        exit_code = server.stop()
        say(f"tritonserver stopped (exit {exit_code})")
        shutil.copy2(server.log_path, run.out / "tritonserver.log")
    return _Served(served_result, scaling_result, exit_code)


def _served_record(result: served.ServedResult, exit_code: int | None) -> dict[str, Any]:
    return {
        "levels": [lv.to_dict() for lv in result.levels],
        "level_stats": result.level_stats,
        "c1_rounds": result.c1_rounds,
        "quality": result.quality.to_dict() if result.quality else None,
        "mean_output_tokens": sum(result.output_tokens) / len(result.output_tokens),
        "quality_pass_s": result.quality_pass_s,
        "rss_kib": {
            "after_warmup": result.rss_after_warmup["total_kib"],
            "after_run": result.rss_after_run["total_kib"],
            "after_warmup_processes": result.rss_after_warmup["processes"],
            "after_run_processes": result.rss_after_run["processes"],
        },
        "server_exit_code": exit_code,
    }


def _summary(run: _Run, serving: _Served, analyzer_version: str) -> dict[str, Any]:
    """Return summary.json's content (ratios included)."""
    assert run.build is not None and run.settings is not None and run.workload is not None
    paths, workload = run.paths, run.workload
    token_counts = {p.name: p.output_tokens for p in paths if isinstance(p, PathResult)}
    token_counts["served_instruction_ner"] = serving.result.output_tokens
    windows = {p.name: p.windows for p in paths if isinstance(p, PathResult) and p.windows}
    windows["served_instruction_ner"] = serving.result.windows
    summary: dict[str, Any] = {
        "schema": 1,
        "profile": run.profile.name,
        "started": run.started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round((datetime.now(UTC) - run.started).total_seconds(), 1),
        "machine": machine.machine_info(),
        "tritonserver_version": serving.result.server_version,
        "perf_analyzer_version": analyzer_version,
        "perf_settings": asdict(run.profile.perf),
        "load": run.monitor.phases,
        "quiet_wait_s": run.gate.waited_s,
        "speed_wait_s": run.gate.speed_waited_s,
        "fastest_speed_probe": run.gate.fastest_speed,
        "model": _model_record(run.build, run.parameters),
        "generation": generation_record(
            run.build.trained, workload.max_new_tokens, token_counts, windows
        ),
        "workload": {
            "corpus": CORPUS,
            "split": SPLIT,
            "sentences": len(workload.sentences),
            "mean_prompt_tokens": workload.mean_prompt_tokens(),
            "labels": list(workload.labels),
        },
        "serving_config": _serving_record(run.settings),
        "serving_overrides": run.overrides,
        "served": _served_record(serving.result, serving.exit_code),
        "paths": [p.to_dict() for p in paths],
        "scaling": serving.scaling,
        "limit": run.limit_result,
    }
    summary["ratios"] = report.compute_ratios(summary)
    return summary


def _write_results(run: _Run, summary: dict[str, Any]) -> None:
    """Write summary.json, the plots and table.md; link ``latest``; say the targets."""
    out = run.out
    summary_file = out / "summary.json"
    summary_file.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    # Figures and the table are optional: a failure is logged and recorded, and the run still
    # links `latest` and prints its final line. summary.json is written again with the record.
    summary["plots"] = write_plots(summary, out)
    summary_file.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    _, table_error = attempt(
        "table",
        lambda: (out / "table.md").write_text(report.markdown_table(summary), encoding="utf-8"),
    )
    latest = run.results_root / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(out.name)
    written = ["summary.json"] + ([] if table_error else ["table.md"]) + summary["plots"]["written"]
    say(f"wrote {out}/: {', '.join(written)}")
    for name, target in summary["ratios"]["targets"].items():
        moved = target.get("speed_moved")
        verdict = f"not comparable (host speed {moved[0]}-{moved[1]})" if moved else target["met"]
        say(f"target {name}: {target['value']} (target {target['target']}): met {verdict}")


def run(
    profile: Profile,
    model_dir: Path,
    build_dir: Path,
    results_root: Path,
    overrides: dict[str, int] | None = None,
) -> int:
    """Run one benchmark; return the exit code."""
    state = _start_run(profile, build_dir, results_root, overrides or {})
    _prepare(state, model_dir)
    _run_baselines(state)
    _run_limit_and_engine(state)
    analyzer_version = machine.perf_analyzer_version()
    serving = _run_server(state)
    summary = _summary(state, serving, analyzer_version)
    _write_results(state, summary)
    sys.stderr.flush()
    print(report.final_line(summary["ratios"]), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--smoke", action="store_true", help="same as --profile smoke")
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--build-dir", type=Path, default=Path("build/out/bench"))
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=INT",
        help=f"try a serving setting other than the shipped default ({', '.join(TUNABLE)})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    profile = PROFILES["smoke" if args.smoke else args.profile]
    try:
        overrides = parse_overrides(args.set)
    except ValueError as error:
        parser.error(str(error))
    return run(profile, args.model, args.build_dir, args.results, overrides)
