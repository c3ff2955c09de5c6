"""The run's ratios and its checks against the performance targets.

:func:`compute_ratios` is what ``summary.json`` stores as ``ratios`` and what the table
shows; :func:`final_line` is the benchmark's last printed line.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from bench.paths import INPROCESS_BATCHMAX, INPROCESS_BATCHMAX_PATHS
from bench.report.speed_probe import speed_moved
from bench.report.summary_lookups import (
    ENGINE,
    ENSEMBLE,
    ENSEMBLE_NO_SCORES,
    Summary,
    engine_batch,
    level,
    level_stats,
    levels,
    measured_paths,
)

TARGET_SCORES_COST = 0.10  # entity scores may cost at most 10% of served throughput
# the performance issue's targets: served against transformers at batch 1 and at its best
# batch, against our engine in-process at its best batch, and the server's own time around
# the engine and its p99 at concurrency 1
TARGET_VS_BATCH1 = 25.0
TARGET_VS_BEST = 3.0
TARGET_VS_INPROCESS = 0.8
TARGET_OVERHEAD_C1_MS = 3.0
TARGET_P99_C1 = 1.2


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _throughput(path: Mapping[str, Any] | None) -> float | None:
    return path["throughput"] if path else None


def best_served(summary: Summary) -> Mapping[str, Any]:
    """Return the ``instruction_ner`` level with the highest throughput.

    Raises:
        ValueError: the summary has no ``instruction_ner`` level.

    """
    served_levels = levels(summary, ENSEMBLE)
    if not served_levels:
        raise ValueError("the summary has no instruction_ner measurement")
    return max(served_levels, key=lambda lv: lv["throughput"])


def transformers_best(summary: Summary) -> Mapping[str, Any]:
    """Return the transformers path (any batch size) with the highest throughput.

    Raises:
        ValueError: no transformers path was measured.

    """
    candidates = [
        p for name, p in measured_paths(summary).items() if name.startswith("transformers_")
    ]
    if not candidates:
        raise ValueError("the summary has no transformers baseline")
    return max(candidates, key=lambda p: p["throughput"])


def engine_inprocess_best(summary: Summary) -> Mapping[str, Any] | None:
    """Return the faster batch-max path of our engine in-process, None if neither ran.

    One runs at the server's thread layout, the other (when the thread sweep found another
    best layout) at the best layout measured: the faster is the machine's best, the honest
    reference of the served path.
    """
    paths = measured_paths(summary)
    candidates = [paths[name] for name in INPROCESS_BATCHMAX_PATHS if name in paths]
    return max(candidates, key=lambda p: p["throughput"], default=None)


def p99_c1_round_ratios(summary: Summary) -> list[float]:
    """Return p99 instruction_ner / p99 engine alone at concurrency 1, one per measured round.

    The first round is the concurrency-1 level of the served table; later rounds (when the
    profile asks for them) were measured after all levels, engine first, alternating.
    """
    pairs = [(level(summary, ENSEMBLE, 1), level(summary, ENGINE, 1))]
    for extra in summary["served"].get("c1_rounds", []):
        pairs.append((extra.get(ENSEMBLE), extra.get(ENGINE)))
    ratios = [_ratio(ens.get("p99_us"), eng.get("p99_us")) for ens, eng in pairs if ens and eng]
    return [r for r in ratios if r is not None]


def server_side_overhead(summary: Summary, concurrency: int = 1) -> dict[str, float] | None:
    """Return what ``instruction_ner`` adds around the engine, from the server's own times.

    Both figures come from the same requests (the instruction_ner level), so a change in the
    machine's load between two perf_analyzer runs does not enter: queue + compute of
    instruction_ner against the compute of the engine calls it made.
    """
    models = level_stats(summary, ENSEMBLE, concurrency).get("models", {})
    ner, engine = models.get(ENSEMBLE, {}), models.get(ENGINE, {})
    same_requests = bool(engine.get("avg_compute_infer_us"))
    if not same_requests:
        # steps "embedded": instruction_ner runs the engine itself and calls no engine model;
        # the engine model's compute on the same windows, measured alone, stands in
        alone = level_stats(summary, ENGINE, concurrency).get("models", {})
        engine = alone.get(ENGINE, {})
    if ner.get("avg_compute_infer_us") is None or not engine.get("avg_compute_infer_us"):
        return None
    total = ner["avg_compute_infer_us"] + (ner.get("avg_queue_us") or 0.0)
    inside = engine["avg_compute_infer_us"]
    return {
        "instruction_ner_queue_plus_compute_ms": total / 1000,
        "engine_compute_ms": inside / 1000,
        "overhead_ms": (total - inside) / 1000,
        "ratio": total / inside,
        "same_requests": same_requests,
    }


def _triton_overhead(summary: Summary) -> list[dict[str, Any]]:
    """Return instruction_ner against the engine model alone, per concurrency both ran at."""
    overhead = []
    for served in levels(summary, ENSEMBLE):
        engine = level(summary, ENGINE, served["concurrency"])
        if engine is None:
            continue
        overhead.append(
            {
                "concurrency": served["concurrency"],
                "engine_over_ensemble_throughput": _ratio(
                    engine["throughput"], served["throughput"]
                ),
                "ensemble_over_engine_p50": _ratio(served.get("p50_us"), engine.get("p50_us")),
                "ensemble_over_engine_p99": _ratio(served.get("p99_us"), engine.get("p99_us")),
                "engine_avg_batch_via_instruction_ner": engine_batch(
                    summary, ENSEMBLE, served["concurrency"]
                ),
                "engine_avg_batch_alone": engine_batch(summary, ENGINE, served["concurrency"]),
            }
        )
    return overhead


def _scores_cost(summary: Summary) -> list[dict[str, Any]]:
    """Return the throughput with and without entity scores, per concurrency both ran at."""
    return [
        {
            "concurrency": served["concurrency"],
            "throughput_with_scores": served["throughput"],
            "throughput_without_scores": plain["throughput"],
            "cost": 1.0 - served["throughput"] / plain["throughput"],
        }
        for served in levels(summary, ENSEMBLE)
        if (plain := level(summary, ENSEMBLE_NO_SCORES, served["concurrency"]))
        and plain["throughput"] > 0
    ]


def _scores_cost_best(summary: Summary, served: Mapping[str, Any]) -> float | None:
    """Return the cost of scores, best with scores against best without (None if not run)."""
    best_plain = max(
        levels(summary, ENSEMBLE_NO_SCORES), key=lambda lv: lv["throughput"], default=None
    )
    if best_plain is None or not best_plain["throughput"]:
        return None
    return 1.0 - served["throughput"] / best_plain["throughput"]


def _p99_c1_ratios(summary: Summary) -> dict[str, Any]:
    """Return the p99 ratios at concurrency 1: against the engine model and in-process."""
    ens_c1 = level(summary, ENSEMBLE, 1)
    p99_ens_c1 = ens_c1.get("p99_us") if ens_c1 else None
    p99_rounds = p99_c1_round_ratios(summary)
    engine_b1 = measured_paths(summary).get("engine_inprocess_batch1")
    engine_b1_p99_us = engine_b1["p99_ms"] * 1000 if engine_b1 else None
    return {
        # the median over the alternating concurrency-1 rounds (one round in older summaries)
        "p99_c1_instruction_ner_over_engine_model": statistics.median(p99_rounds)
        if p99_rounds
        else None,
        "p99_c1_rounds": p99_rounds,
        "p99_c1_instruction_ner_over_engine_inprocess": _ratio(p99_ens_c1, engine_b1_p99_us),
    }


def _throughput_ratios(
    summary: Summary, served: Mapping[str, Any], best_hf: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the best served throughput and its ratios to the in-process paths."""
    paths = measured_paths(summary)
    hf1 = paths.get("transformers_batch1")
    engine_max = engine_inprocess_best(summary)
    pypi = paths.get("instruction_ner_pypi_batch1")
    return {
        "best_served_throughput": served["throughput"],
        "best_served_concurrency": served["concurrency"],
        "best_served_stable": served.get("stable", True),
        "transformers_batch1_throughput": _throughput(hf1),
        "transformers_best_throughput": best_hf["throughput"],
        "transformers_best_batch": best_hf["batch_size"],
        "transformers_best_name": best_hf["name"],
        "speedup_vs_transformers_batch1": _ratio(served["throughput"], _throughput(hf1)),
        "speedup_vs_transformers_best": _ratio(served["throughput"], best_hf["throughput"]),
        "speedup_vs_pypi_package": _ratio(served["throughput"], _throughput(pypi)),
        "served_over_engine_inprocess_best": _ratio(served["throughput"], _throughput(engine_max)),
        # which in-process path that is: its name, title and thread layout
        "engine_inprocess_reference": None
        if engine_max is None
        else {k: engine_max.get(k) for k in ("name", "title", "batch_size", "layout")},
        "engine_inprocess_best_vs_transformers_best": _ratio(
            _throughput(engine_max), best_hf["throughput"]
        ),
    }


def compute_ratios(summary: Summary) -> dict[str, Any]:
    """Return every ratio of the run (None where a figure is missing) and the target checks."""
    paths = measured_paths(summary)
    served = best_served(summary)
    best_hf = transformers_best(summary)
    served_f1 = summary["served"]["quality"]["f1"]
    f1s = {name: p["quality"]["f1"] for name, p in paths.items() if p.get("quality")}
    f1s["served_instruction_ner"] = served_f1
    ratios: dict[str, Any] = {
        **_throughput_ratios(summary, served, best_hf),
        **_p99_c1_ratios(summary),
        "triton_overhead": _triton_overhead(summary),
        "scores_cost": _scores_cost(summary),
        # best throughput with scores against the best without (each at its best concurrency)
        "scores_cost_best": _scores_cost_best(summary, served),
        "server_side_overhead_c1": server_side_overhead(summary, 1),
        "f1": f1s,
        "f1_max_abs_difference": max(f1s.values()) - min(f1s.values()) if f1s else None,
    }
    # same F1: against our engine at the server's layout (the same engine configuration)
    targets = _targets(ratios, served_f1, f1s.get(INPROCESS_BATCHMAX))
    _mark_speed_moved(targets, summary, served, best_hf)
    ratios["targets"] = targets
    return ratios


def _mark_speed_moved(
    targets: dict[str, Any],
    summary: Summary,
    served: Mapping[str, Any],
    best_hf: Mapping[str, Any],
) -> None:
    """Void the throughput targets whose two phases ran at different host speeds."""
    served_phase = f"{ENSEMBLE}_c{served['concurrency']}"
    load = summary.get("load") or {}
    for key, other in (
        ("throughput_vs_transformers_batch1", measured_paths(summary).get("transformers_batch1")),
        ("throughput_vs_transformers_best", best_hf),
        ("served_vs_engine_inprocess_best", engine_inprocess_best(summary)),
    ):
        moved = speed_moved(load, [served_phase, other["name"]] if other else [])
        if moved is not None:
            # a ratio of throughputs measured at two host speeds says nothing of the server
            targets[key].update(met=None, speed_moved=list(moved))


def _targets(ratios: Mapping[str, Any], served_f1: float, engine_f1: float | None) -> dict:
    def check(value: float | None, bound: float, at_least: bool) -> dict[str, Any]:
        met = None if value is None else (value >= bound if at_least else value <= bound)
        return {"value": value, "target": bound, "met": met}

    return {
        "throughput_vs_transformers_batch1": check(
            ratios["speedup_vs_transformers_batch1"], TARGET_VS_BATCH1, at_least=True
        ),
        "throughput_vs_transformers_best": check(
            ratios["speedup_vs_transformers_best"], TARGET_VS_BEST, at_least=True
        ),
        "served_vs_engine_inprocess_best": check(
            ratios["served_over_engine_inprocess_best"], TARGET_VS_INPROCESS, at_least=True
        ),
        "overhead_c1_ms": check(
            (ratios.get("server_side_overhead_c1") or {}).get("overhead_ms"),
            TARGET_OVERHEAD_C1_MS,
            at_least=False,
        ),
        "p99_c1_vs_engine_alone": check(
            ratios["p99_c1_instruction_ner_over_engine_model"], TARGET_P99_C1, at_least=False
        ),
        "entity_scores_cost": check(ratios["scores_cost_best"], TARGET_SCORES_COST, at_least=False),
        "same_f1_served_vs_engine": {
            "value": None if engine_f1 is None else served_f1 - engine_f1,
            "target": 0.0,
            "met": None if engine_f1 is None else abs(served_f1 - engine_f1) < 1e-9,
        },
    }


def final_line(ratios: Mapping[str, Any]) -> str:
    """Return ``speedup_vs_transformers_batch1=<r1> speedup_vs_transformers_best=<r2>``."""

    def fmt(value: float | None) -> str:
        return "nan" if value is None else f"{value:.2f}"

    return (
        f"speedup_vs_transformers_batch1={fmt(ratios['speedup_vs_transformers_batch1'])} "
        f"speedup_vs_transformers_best={fmt(ratios['speedup_vs_transformers_best'])}"
    )
