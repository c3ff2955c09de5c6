"""Turn a run's summary into ratios, target checks, a markdown table and the final line.

Everything here is a pure function of the summary dict (what ``summary.json`` holds), so the
README table can be regenerated from a results folder: ``python -m bench.report DIR``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.paths import INPROCESS_BATCHMAX, INPROCESS_BATCHMAX_PATHS
from bench.plot import SCALING_PLOTS

ENSEMBLE = "instruction_ner"
ENGINE = "engine"
ENSEMBLE_NO_SCORES = "instruction_ner_no_scores"
TARGET_SCORES_COST = 0.10  # entity scores may cost at most 10% of served throughput
# the performance issue's targets: served against transformers at batch 1 and at its best
# batch, against our engine in-process at its best batch, and the server's own time around
# the engine and its p99 at concurrency 1
TARGET_VS_BATCH1 = 25.0
TARGET_VS_BEST = 3.0
TARGET_VS_INPROCESS = 0.8
TARGET_OVERHEAD_C1_MS = 3.0
TARGET_P99_C1 = 1.2

Summary = Mapping[str, Any]
# serving setting ``steps``: where instruction_ner (the BLS) builds prompts and parses answers
STEP_PLACES = {
    "embedded": "the CPU engine inside the BLS itself: no model call per window",
    "inline": "prompts and answers in the BLS itself: one engine model call per window",
    "models": "prompts and answers through the preprocessing and postprocessing models",
}


def _levels(summary: Summary, model: str) -> list[Mapping[str, Any]]:
    levels = summary["served"]["levels"]
    return sorted((lv for lv in levels if lv["model"] == model), key=lambda lv: lv["concurrency"])


def _level(summary: Summary, model: str, concurrency: int) -> Mapping[str, Any] | None:
    for level in _levels(summary, model):
        if level["concurrency"] == concurrency:
            return level
    return None


def _paths(summary: Summary) -> dict[str, Mapping[str, Any]]:
    return {
        p["name"]: p for p in summary["paths"] if p.get("available", True) and "throughput" in p
    }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def best_served(summary: Summary) -> Mapping[str, Any]:
    """Return the ``instruction_ner`` level with the highest throughput.

    Raises:
        ValueError: the summary has no ``instruction_ner`` level.

    """
    levels = _levels(summary, ENSEMBLE)
    if not levels:
        raise ValueError("the summary has no instruction_ner measurement")
    return max(levels, key=lambda lv: lv["throughput"])


def transformers_best(summary: Summary) -> Mapping[str, Any]:
    """Return the transformers path (any batch size) with the highest throughput.

    Raises:
        ValueError: no transformers path was measured.

    """
    candidates = [p for name, p in _paths(summary).items() if name.startswith("transformers_")]
    if not candidates:
        raise ValueError("the summary has no transformers baseline")
    return max(candidates, key=lambda p: p["throughput"])


def engine_inprocess_best(summary: Summary) -> Mapping[str, Any] | None:
    """Return the faster batch-max path of our engine in-process, None if neither ran.

    One runs at the server's thread layout, the other (when the thread sweep found another
    best layout) at the best layout measured: the faster is the machine's best, the honest
    reference of the served path.
    """
    paths = _paths(summary)
    candidates = [paths[name] for name in INPROCESS_BATCHMAX_PATHS if name in paths]
    return max(candidates, key=lambda p: p["throughput"], default=None)


def p99_c1_round_ratios(summary: Summary) -> list[float]:
    """Return p99 instruction_ner / p99 engine alone at concurrency 1, one per measured round.

    The first round is the concurrency-1 level of the served table; later rounds (when the
    profile asks for them) were measured after all levels, engine first, alternating.
    """
    pairs = [(_level(summary, ENSEMBLE, 1), _level(summary, ENGINE, 1))]
    for extra in summary["served"].get("c1_rounds", []):
        pairs.append((extra.get(ENSEMBLE), extra.get(ENGINE)))
    ratios = [_ratio(ens.get("p99_us"), eng.get("p99_us")) for ens, eng in pairs if ens and eng]
    return [r for r in ratios if r is not None]


def compute_ratios(summary: Summary) -> dict[str, Any]:
    """Return every ratio of the run (None where a figure is missing) and the target checks."""
    paths = _paths(summary)
    served = best_served(summary)
    best_hf = transformers_best(summary)
    hf1 = paths.get("transformers_batch1")
    engine_b1 = paths.get("engine_inprocess_batch1")
    engine_max = engine_inprocess_best(summary)
    pypi = paths.get("instruction_ner_pypi_batch1")
    ens_c1 = _level(summary, ENSEMBLE, 1)
    p99_ens_c1 = ens_c1.get("p99_us") if ens_c1 else None
    p99_rounds = p99_c1_round_ratios(summary)
    engine_b1_p99_us = engine_b1["p99_ms"] * 1000 if engine_b1 else None
    overhead = []
    for level in _levels(summary, ENSEMBLE):
        engine = _level(summary, ENGINE, level["concurrency"])
        if engine is None:
            continue
        overhead.append(
            {
                "concurrency": level["concurrency"],
                "engine_over_ensemble_throughput": _ratio(
                    engine["throughput"], level["throughput"]
                ),
                "ensemble_over_engine_p50": _ratio(level.get("p50_us"), engine.get("p50_us")),
                "ensemble_over_engine_p99": _ratio(level.get("p99_us"), engine.get("p99_us")),
                "engine_avg_batch_via_instruction_ner": _engine_batch(
                    summary, ENSEMBLE, level["concurrency"]
                ),
                "engine_avg_batch_alone": _engine_batch(summary, ENGINE, level["concurrency"]),
            }
        )
    scores_cost = [
        {
            "concurrency": level["concurrency"],
            "throughput_with_scores": level["throughput"],
            "throughput_without_scores": plain["throughput"],
            "cost": 1.0 - level["throughput"] / plain["throughput"],
        }
        for level in _levels(summary, ENSEMBLE)
        if (plain := _level(summary, ENSEMBLE_NO_SCORES, level["concurrency"]))
        and plain["throughput"] > 0
    ]
    best_plain = max(
        _levels(summary, ENSEMBLE_NO_SCORES), key=lambda lv: lv["throughput"], default=None
    )
    served_f1 = summary["served"]["quality"]["f1"]
    f1s = {name: p["quality"]["f1"] for name, p in paths.items() if p.get("quality")}
    f1s["served_instruction_ner"] = served_f1
    ratios: dict[str, Any] = {
        "best_served_throughput": served["throughput"],
        "best_served_concurrency": served["concurrency"],
        "best_served_stable": served.get("stable", True),
        "transformers_batch1_throughput": hf1["throughput"] if hf1 else None,
        "transformers_best_throughput": best_hf["throughput"],
        "transformers_best_batch": best_hf["batch_size"],
        "transformers_best_name": best_hf["name"],
        "speedup_vs_transformers_batch1": _ratio(
            served["throughput"], hf1["throughput"] if hf1 else None
        ),
        "speedup_vs_transformers_best": _ratio(served["throughput"], best_hf["throughput"]),
        "speedup_vs_pypi_package": _ratio(
            served["throughput"], pypi["throughput"] if pypi else None
        ),
        "served_over_engine_inprocess_best": _ratio(
            served["throughput"], engine_max["throughput"] if engine_max else None
        ),
        # which in-process path that is: its name, title and thread layout
        "engine_inprocess_reference": None
        if engine_max is None
        else {k: engine_max.get(k) for k in ("name", "title", "batch_size", "layout")},
        "engine_inprocess_best_vs_transformers_best": _ratio(
            engine_max["throughput"] if engine_max else None, best_hf["throughput"]
        ),
        # the median over the alternating concurrency-1 rounds (one round in older summaries)
        "p99_c1_instruction_ner_over_engine_model": statistics.median(p99_rounds)
        if p99_rounds
        else None,
        "p99_c1_rounds": p99_rounds,
        "p99_c1_instruction_ner_over_engine_inprocess": _ratio(p99_ens_c1, engine_b1_p99_us),
        "triton_overhead": overhead,
        "scores_cost": scores_cost,
        # best throughput with scores against the best without (each at its best concurrency)
        "scores_cost_best": None
        if best_plain is None or not best_plain["throughput"]
        else 1.0 - served["throughput"] / best_plain["throughput"],
        "server_side_overhead_c1": server_side_overhead(summary, 1),
        "f1": f1s,
        "f1_max_abs_difference": max(f1s.values()) - min(f1s.values()) if f1s else None,
    }
    # same F1: against our engine at the server's layout (the same engine configuration)
    targets = _targets(ratios, served_f1, f1s.get(INPROCESS_BATCHMAX))
    served_phase = f"{ENSEMBLE}_c{served['concurrency']}"
    load = summary.get("load") or {}
    for key, other in (
        ("throughput_vs_transformers_batch1", hf1),
        ("throughput_vs_transformers_best", best_hf),
        ("served_vs_engine_inprocess_best", engine_max),
    ):
        moved = speed_moved(load, [served_phase, other["name"]] if other else [])
        if moved is not None:
            # a ratio of throughputs measured at two host speeds says nothing of the server
            targets[key].update(met=None, speed_moved=list(moved))
    ratios["targets"] = targets
    return ratios


def speed_moved(load: Mapping[str, Any], phases: Sequence[str]) -> tuple[float, float] | None:
    """Return (lowest, highest) speed probe around ``phases`` when they differ too much.

    Every probe before and after each phase counts; None when the spread is within
    :data:`SPEED_DRIFT_WARNING` or no phase carries a probe.
    """
    speeds = [
        float(record[key])
        for name in phases
        if isinstance(record := load.get(name), Mapping)
        for key in ("speed_probe", "speed_probe_end")
        if key in record
    ]
    if not speeds or min(speeds) <= 0:
        return None
    low, high = min(speeds), max(speeds)
    return (low, high) if high / low - 1 > SPEED_DRIFT_WARNING else None


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


# spread of the speed probe (10th to 90th percentile over the phases) that the table calls
# out; the probe's own scatter on a quiet machine is about ±5%, with rare single outliers
SPEED_DRIFT_WARNING = 0.20


def speed_spread(load: Mapping[str, Any]) -> dict[str, float] | None:
    """Return the speed probes of ``load``: count, lowest, 10th percentile, median, 90th.

    None when no phase carries a probe (runs before the probe existed).
    """
    speeds = sorted(
        r["speed_probe"] for r in load.values() if isinstance(r, Mapping) and "speed_probe" in r
    )
    if not speeds:
        return None

    def at(share: float) -> float:
        return float(speeds[round(share * (len(speeds) - 1))])

    return {
        "phases": len(speeds),
        "lowest": float(speeds[0]),
        "p10": at(0.1),
        "median": float(statistics.median(speeds)),
        "p90": at(0.9),
    }


def _speed_note(load: Mapping[str, Any]) -> str:
    spread = speed_spread(load)
    if spread is None:
        return ""
    drift = spread["p90"] / spread["p10"] - 1 if spread["p10"] > 0 else float("inf")
    note = (
        f" The machine's own speed before each of {spread['phases']:.0f} phases (the best of "
        "three 0.05 s single-threaded probes in a process of their own, `speed_probe` in "
        "`load`; other processes cannot show a slower host): median "
        f"{spread['median']:.1f} M steps/s, 10th–90th percentile {spread['p10']:.1f}–"
        f"{spread['p90']:.1f} (a spread of {drift * 100:.0f}%), lowest {spread['lowest']:.1f}."
    )
    if drift > SPEED_DRIFT_WARNING:
        note += (
            f" **Its speed moved by more than {SPEED_DRIFT_WARNING * 100:.0f}% during the run: "
            "ratios between paths measured at different times carry that drift.**"
        )
    return note


def _rounds_note(rounds: Sequence[float]) -> str:
    if len(rounds) < 2:
        return ""
    each = ", ".join(f"{r:.2f}" for r in rounds)
    return f"(median of {len(rounds)} alternating rounds: {each}) "


def _config_line(summary: Summary) -> str:
    config = summary.get("serving_config", {})
    keys = (
        "steps",  # where the BLS builds prompts and parses answers; older summaries lack it
        "max_batch_size",
        "engine_instances",
        "inter_threads",
        "intra_threads",
        "bls_instances",
        "step_instances",
        "engine_queue_delay_us",
        "step_queue_delay_us",
    )

    def setting(key: str) -> str:
        note = STEP_PLACES.get(str(config[key])) if key == "steps" else None
        return f"{key} {config[key]}" + (f" ({note})" if note else "")

    # with the engine embedded, instruction_ner has the engine's instances and calls no step
    # model: the BLS and step instance counts are not used
    unused = {"bls_instances", "step_instances"} if config.get("steps") == "embedded" else set()
    shown = ", ".join(setting(k) for k in keys if k in config and k not in unused)
    overrides = summary.get("serving_overrides") or {}
    if overrides:
        changed = ", ".join(f"{k}={v}" for k, v in overrides.items())
        return f"Serving settings: {shown} (**changed from the shipped defaults: {changed}**)."
    return f"Serving settings (shipped defaults): {shown}."


def _reference(ratios: Mapping[str, Any]) -> str:
    """Say which in-process path is the reference: its batch and thread layout."""
    reference = ratios.get("engine_inprocess_reference")
    if not reference:
        return ""
    layout = f", {reference['layout']}" if reference.get("layout") else ""
    return f" ({reference.get('batch_size')}{layout})"


def _overhead_line(overhead: Mapping[str, float] | None) -> str:
    if not overhead:
        return "- server-side time around the engine at concurrency 1: not measured"
    total = overhead["instruction_ner_queue_plus_compute_ms"]
    source = (
        "same requests, so free of load drift"
        if overhead.get("same_requests", True)
        else "the engine embedded in instruction_ner; engine compute from the engine model "
        "measured alone on the same windows"
    )
    return (
        f"- server-side time around the engine at concurrency 1 ({source}): "
        f"instruction_ner queue + compute {total:.1f} ms "
        f"vs engine compute {overhead['engine_compute_ms']:.1f} ms: "
        f"+{overhead['overhead_ms']:.1f} ms, {overhead['ratio']:.3f}×"
    )


def final_line(ratios: Mapping[str, Any]) -> str:
    """Return ``speedup_vs_transformers_batch1=<r1> speedup_vs_transformers_best=<r2>``."""

    def fmt(value: float | None) -> str:
        return "nan" if value is None else f"{value:.2f}"

    return (
        f"speedup_vs_transformers_batch1={fmt(ratios['speedup_vs_transformers_batch1'])} "
        f"speedup_vs_transformers_best={fmt(ratios['speedup_vs_transformers_best'])}"
    )


def _ms(us: float | None) -> str:
    return "–" if us is None else f"{us / 1000:.0f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _others(load: Mapping[str, Any] | None) -> str:
    """Return the share of the machine other processes used, in percent."""
    if not load or "others" not in load:
        return "–"
    return f"{load['others'] * 100:.0f}"


def _level_stats(summary: Summary, model: str, concurrency: int) -> Mapping[str, Any]:
    for stats in summary["served"].get("level_stats", []):
        if stats["model"] == model and stats["concurrency"] == concurrency:
            return stats
    return {}


def _level_load(summary: Summary, model: str, concurrency: int) -> Mapping[str, Any] | None:
    return _level_stats(summary, model, concurrency).get("load")


def _engine_batch(summary: Summary, model: str, concurrency: int) -> float | None:
    """Return the engine model's average executed batch while ``model`` was measured."""
    engine = _level_stats(summary, model, concurrency).get("models", {}).get(ENGINE, {})
    return engine.get("avg_batch")


def server_side_overhead(summary: Summary, concurrency: int = 1) -> dict[str, float] | None:
    """Return what ``instruction_ner`` adds around the engine, from the server's own times.

    Both figures come from the same requests (the instruction_ner level), so a change in the
    machine's load between two perf_analyzer runs does not enter: queue + compute of
    instruction_ner against the compute of the engine calls it made.
    """
    models = _level_stats(summary, ENSEMBLE, concurrency).get("models", {})
    ner, engine = models.get(ENSEMBLE, {}), models.get(ENGINE, {})
    same_requests = bool(engine.get("avg_compute_infer_us"))
    if not same_requests:
        # steps "embedded": instruction_ner runs the engine itself and calls no engine model;
        # the engine model's compute on the same windows, measured alone, stands in
        alone = _level_stats(summary, ENGINE, concurrency).get("models", {})
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


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


PLOT = "throughput_vs_p99.png"


def markdown_table(summary: Summary, image_link: str = PLOT) -> str:
    """Return the README's performance section (markdown) for one run."""
    # recomputed from the raw measurements, so a published run is re-read with today's targets
    ratios = compute_ratios(summary)
    machine = summary["machine"]
    load = summary.get("load", {})
    served_load = load.get("served", {})
    model = summary["model"]
    lines = [
        f"Measured {summary['started'][:16].replace('T', ' ')} UTC with `make bench` "
        f"(profile {summary['profile']}) on {machine['cpu_model']}, "
        f"{machine['usable_cpus']} cores ({', '.join(machine['simd']) or 'no AVX2'}), "
        f"{machine['memory_gib']} GiB, no GPU; Triton {summary.get('tritonserver_version', '?')}, "
        f"{summary.get('perf_analyzer_version', 'perf_analyzer')}. Other processes used "
        f"{served_load.get('others', 0) * 100:.0f}% of the machine during the load test "
        "(see `load` in summary.json)." + _speed_note(load),
        "",
        f"Model: {model['description']}. Workload: the first {summary['workload']['sentences']} "
        f"CoNLL-2003 test sentences ({summary['workload']['mean_prompt_tokens']:.0f} prompt "
        f"tokens on average), {summary['generation']['note']}",
        "",
        _config_line(summary),
        "",
        "**Served, perf_analyzer over gRPC, one sentence per request** (latencies in ms; "
        "queue and compute are the server's averages for the model called; others % is the "
        "share of the machine other processes took meanwhile; engine batch is the engine "
        "model's average executed batch; both as instruction_ner / engine alone, the engine "
        "model on the same prompts, asked for log-probabilities as instruction_ner asks it)",
        "",
        _row(
            [
                "concurrency",
                "instruction_ner sent/s",
                "p50",
                "p90",
                "p99",
                "queue",
                "compute",
                "engine alone sent/s",
                "engine p50",
                "engine p99",
                "engine batch",
                "others %",
            ]
        ),
        _row(["---:"] * 12),
    ]
    for level in _levels(summary, ENSEMBLE):
        engine = _level(summary, ENGINE, level["concurrency"]) or {}
        flag = "" if level.get("stable", True) else " (unstable)"
        eng_flag = "" if engine.get("stable", True) else " (unstable)"
        lines.append(
            _row(
                [
                    str(level["concurrency"]),
                    _num(level["throughput"]) + flag,
                    _ms(level.get("p50_us")),
                    _ms(level.get("p90_us")),
                    _ms(level.get("p99_us")),
                    _ms(level.get("server_queue_us")),
                    _ms(level.get("server_compute_infer_us")),
                    _num(engine.get("throughput")) + eng_flag,
                    _ms(engine.get("p50_us")),
                    _ms(engine.get("p99_us")),
                    _num(_engine_batch(summary, ENSEMBLE, level["concurrency"]))
                    + " / "
                    + _num(_engine_batch(summary, ENGINE, level["concurrency"])),
                    _others(_level_load(summary, ENSEMBLE, level["concurrency"]))
                    + " / "
                    + _others(_level_load(summary, ENGINE, level["concurrency"])),
                ]
            )
        )
    if ratios.get("scores_cost"):
        costs = ", ".join(
            f"c{row['concurrency']} {row['throughput_without_scores']:.1f} → "
            f"{row['throughput_with_scores']:.1f} sent/s ({row['cost'] * 100:+.1f}%)"
            for row in ratios["scores_cost"]
        )
        lines += [
            "",
            "Entity scores (RETURN_SCORES true, the default, against false; same run): "
            f"{costs}; best against best: {ratios['scores_cost_best'] * 100:+.1f}% of throughput "
            f"(target ≤ {TARGET_SCORES_COST * 100:.0f}%).",
        ]
    lines += [
        "",
        "**Same sentences, same checkpoint, same generation length, in one process**",
        "",
        _row(
            [
                "path",
                "batch",
                "sent/s",
                "p50 ms",
                "p99 ms",
                "F1",
                "tokens/sentence",
                "others %",
                "notes",
            ]
        ),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---"]),
    ]
    served = summary["served"]
    lines.append(
        _row(
            [
                "**served `instruction_ner`** (best concurrency "
                f"{ratios['best_served_concurrency']})",
                "dynamic",
                _num(ratios["best_served_throughput"]),
                "–",
                "–",
                _num(served["quality"]["f1"], 3),
                _num(served["mean_output_tokens"]),
                _others(_level_load(summary, ENSEMBLE, ratios["best_served_concurrency"])),
                "RESULT entities from the server",
            ]
        )
    )
    for path in summary["paths"]:
        if not path.get("available", True):
            lines.append(
                _row(
                    [
                        path["title"],
                        "–",
                        "n/a",
                        "–",
                        "–",
                        "–",
                        "–",
                        "–",
                        "not run: " + path["reason"],
                    ]
                )
            )
            continue
        lines.append(
            _row(
                [
                    path["title"],
                    str(path["batch_size"]),
                    _num(path["throughput"]),
                    _num(path.get("p50_ms"), 0),
                    _num(path.get("p99_ms"), 0),
                    _num(path["quality"]["f1"], 3),
                    _num(path["mean_output_tokens"]),
                    _others(path.get("load")),
                    path.get("notes", ""),
                ]
            )
        )
    targets = ratios["targets"]

    def verdict(key: str) -> str:
        moved = targets[key].get("speed_moved")
        if moved:
            return (
                f"**not comparable**: the host's speed probe read {moved[0]:.1f}–"
                f"{moved[1]:.1f} around the two phases"
            )
        met = targets[key]["met"]
        return "n/a" if met is None else ("met" if met else "**missed**")

    rss = served.get("rss_kib", {})
    lines += [
        "",
        "**Ratios** (target in brackets)",
        "",
        f"- served / transformers batch 1: {_num(ratios['speedup_vs_transformers_batch1'], 2)}× "
        f"(≥ {TARGET_VS_BATCH1}×: {verdict('throughput_vs_transformers_batch1')})",
        f"- served / transformers best batch ({ratios['transformers_best_batch']}): "
        f"{_num(ratios['speedup_vs_transformers_best'], 2)}× "
        f"(≥ {TARGET_VS_BEST}×: {verdict('throughput_vs_transformers_best')})",
        f"- served / PyPI instruction-ner: {_num(ratios['speedup_vs_pypi_package'], 2)}×",
        f"- served / our engine in-process at its best batch{_reference(ratios)}: "
        f"{_num(ratios['served_over_engine_inprocess_best'], 2)}× "
        f"(≥ {TARGET_VS_INPROCESS}×: {verdict('served_vs_engine_inprocess_best')})",
        f"- p99 at concurrency 1, instruction_ner / engine model alone: "
        f"{_num(ratios['p99_c1_instruction_ner_over_engine_model'], 2)}× "
        f"{_rounds_note(ratios.get('p99_c1_rounds') or [])}"
        f"(≤ {TARGET_P99_C1}×: {verdict('p99_c1_vs_engine_alone')}); / engine in-process batch 1 "
        f"(first round): {_num(ratios['p99_c1_instruction_ner_over_engine_inprocess'], 2)}×",
        _overhead_line(ratios.get("server_side_overhead_c1"))
        + f" (≤ {TARGET_OVERHEAD_C1_MS:.0f} ms: {verdict('overhead_c1_ms')})",
        f"- F1 served − F1 engine in-process: "
        f"{_num(targets['same_f1_served_vs_engine']['value'], 3)} "
        f"({verdict('same_f1_served_vs_engine')}); largest F1 difference over all paths "
        f"{_num(ratios['f1_max_abs_difference'], 3)}",
        f"- server resident memory (tritonserver + stubs): "
        f"{_num(rss.get('after_warmup', 0) / 1024, 0)} MiB after warm-up, "
        f"{_num(rss.get('after_run', 0) / 1024, 0)} MiB after the run",
        "",
    ]
    lines += _image(summary, "throughput vs p99 latency", image_link, PLOT, True)
    lines += scaling_section(summary, image_link)
    scaling = summary.get("scaling")
    lines += _image(
        summary,
        "throughput and latency against concurrency",
        image_link,
        SCALING_PLOTS["concurrency"],
        bool(scaling) and bool(summary["served"]["levels"]),
        "**Scaling with concurrency**: the served table above, as curves.",
    )
    lines += limit_section(summary)
    return "\n".join(lines)


def _sibling(image_link: str, name: str) -> str:
    """Return the link of another image in the main plot's folder."""
    if name == PLOT:
        return image_link
    folder, slash, _ = image_link.rpartition("/")
    return f"{folder}{slash}{name}"


def plot_written(summary: Summary, name: str, has_data: bool) -> bool:
    """Say whether the run wrote figure ``name``.

    A summary records its figures in ``plots.written``; an older one does not, and drew a
    figure whenever it had data for it (``has_data``).
    """
    plots = summary.get("plots")
    if isinstance(plots, Mapping) and "written" in plots:
        return name in plots["written"]
    return has_data


def _image(
    summary: Summary, alt: str, image_link: str, name: str, has_data: bool, heading: str = ""
) -> list[str]:
    """Return the markdown of figure ``name`` (after ``heading``), none if it was not written."""
    if not plot_written(summary, name, has_data):
        return []
    return ([heading, ""] if heading else []) + [f"![{alt}]({_sibling(image_link, name)})", ""]


def _failed_points(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return a line per scaling point that could not be measured (none if all were)."""
    if not points:
        return []
    return [
        "Not measured: "
        + "; ".join(
            f"{p['sentences_per_request']} sentences/request with {p['label_count']} labels "
            f"({p['error']})"
            for p in points
        )
        + ".",
        "",
    ]


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _p50(point: Mapping[str, Any]) -> str:
    """p50 in ms, or the mean latency of an unstable level (which has no percentiles)."""
    if point.get("p50_ms") is None and point.get("mean_ms") is not None:
        return f"{point['mean_ms']:.0f} (mean)"
    return _num(point.get("p50_ms"), 0)


def scaling_section(summary: Summary, image_link: str = PLOT) -> list[str]:
    """Return the markdown of the document-length and label sweeps (none without them)."""
    scaling = summary.get("scaling")
    if not scaling:
        return []
    if "error" in scaling:
        return [f"**Scaling**: not measured: {scaling['error']}", ""]
    concurrency = scaling["concurrency"]
    lines = [
        f"**Scaling with document length** ({scaling['model']} at concurrency {concurrency}, "
        "perf_analyzer over gRPC; a request is k consecutive CoNLL-2003 test sentences of the "
        f"first {scaling['pool_sentences']} joined by a line break into one TEXT, with the "
        f"corpus's {scaling['base_labels']} label words; the server splits it into sentence "
        "windows; ms/sentence is 1000 / sentences/s)",
        "",
        _row(
            [
                "sentences/request",
                "windows/request",
                "words/request",
                "prompt tokens/request",
                "requests/s",
                "sentences/s",
                "words/s",
                "p50 ms",
                "p99 ms",
                "ms/sentence",
                "p50 ms/sentence",
                "engine batch",
                "others %",
            ]
        ),
        _row(["---:"] * 13),
    ]
    for p in sorted(scaling["doc_length"], key=lambda p: p["sentences_per_request"]):
        flag = "" if p.get("stable", True) else " (unstable)"
        lines.append(
            _row(
                [
                    str(p["sentences_per_request"]),
                    _num(p["windows_per_request"]),
                    _num(p["words_per_request"], 0),
                    _num(p["prompt_tokens_per_request"], 0),
                    _num(p["requests_per_s"], 2) + flag,
                    _num(p["sentences_per_s"]),
                    _num(p["words_per_s"], 0),
                    _p50(p),
                    _num(p.get("p99_ms"), 0),
                    _num(p.get("ms_per_sentence")),
                    _num(p.get("p50_ms_per_sentence")),
                    _num(p.get("engine_avg_batch")),
                    _others(p.get("load")),
                ]
            )
        )
    growth = scaling.get("growth", {})
    failed = scaling.get("failed", [])
    lines += [""] + _failed_points(
        [p for p in failed if p["label_count"] == scaling["base_labels"]]
    )
    lines += ["Growth: " + growth.get("doc_length", {}).get("text", "not computed"), ""]
    lines += _image(
        summary,
        "throughput and latency against document length",
        image_link,
        SCALING_PLOTS["doc_length"],
        bool(scaling["doc_length"]),
    )
    lines += [
        f"**Scaling with the label count** (one sentence per request, the same sentences, "
        f"concurrency {concurrency}; prompt and output tokens are the server's counts per "
        "window; GOP/request is the model's work in 10^9 operations, 2 per multiply-add, "
        "bench/flops.py)",
        "",
        _row(
            [
                "labels",
                "prompt tokens/window",
                "output tokens/window",
                "GOP/request",
                "sentences/s",
                "p50 ms",
                "p99 ms",
                "ms/sentence",
                "engine batch",
                "others %",
            ]
        ),
        _row(["---:"] * 10),
    ]
    for p in sorted(scaling["labels"], key=lambda p: p["label_count"]):
        flag = "" if p.get("stable", True) else " (unstable)"
        lines.append(
            _row(
                [
                    str(p["label_count"]),
                    _num(p["prompt_tokens_per_window"]),
                    _num(p["output_tokens_per_window"]),
                    _num(_gop_per_request(p), 3),
                    _num(p["sentences_per_s"]) + flag,
                    _p50(p),
                    _num(p.get("p99_ms"), 0),
                    _num(p.get("ms_per_sentence")),
                    _num(p.get("engine_avg_batch")),
                    _others(p.get("load")),
                ]
            )
        )
    lists = "; ".join(
        v["description"]
        for _, v in sorted(scaling.get("label_lists", {}).items(), key=lambda item: int(item[0]))
    )
    lines += [""] + _failed_points([p for p in failed if p["sentences_per_request"] == 1])
    lines += [
        f"Label lists (label words of instructner.labels, the benchmark corpus's first, then "
        f"the other corpora's in corpus order, each word once): {lists}. Every word is in "
        "`scaling.label_lists` of summary.json.",
        "",
        "Growth: " + growth.get("labels", {}).get("text", "not computed"),
        "",
    ]
    lines += _image(
        summary,
        "throughput and latency against the label count",
        image_link,
        SCALING_PLOTS["labels"],
        bool(scaling["labels"]),
    )
    return lines


def _gop_per_request(point: Mapping[str, Any]) -> float | None:
    """Return the model's GOP per request (older summaries: gflop_per_request)."""
    value = point.get("gop_per_request", point.get("gflop_per_request"))
    return None if value is None else float(value)


def limit_section(summary: Summary) -> list[str]:
    """Return the markdown of the GEMM peak, the achieved rates and the thread layouts."""
    limit = summary.get("limit")
    if not limit:
        return []
    if "error" in limit:
        return [f"**The limit**: not measured: {limit['error']}", ""]
    peak = limit.get("gemm_peak", {})

    def peak_text(kind: str) -> str:
        record = peak.get(kind, {})
        if not record:
            return f"{kind}: not measured"
        if not record.get("available"):
            return f"{kind} {record.get('op', '')}: not available ({record.get('reason', '')})"
        others = f", others {_others(record['load'])}%" if record.get("load") else ""
        return (
            f"{kind} {record['op']} {record['peak_gops']:.0f} GOP/s "
            f"(median {record['median_gops']:.0f}, n = {record['n']}, {record['threads']} threads"
            f"{others})"
        )

    kind = limit.get("peak_kind", "int8")
    lines = [
        f"**The limit** (engine {limit['compute_type']}; model operations over the real token "
        "counts, bench/flops.py, against the GEMM peak measured in this run)",
        "",
        f"- GEMM peak: {peak_text('int8')}; {peak_text('float32')}",
    ]
    for entry in limit.get("achieved", []):
        lines.append(
            f"- achieved, {entry['source']}: {_num(entry.get('gops'), 2)} GOP/s = "
            f"{_pct(entry.get('fraction_of_peak'))} of the {kind} peak"
        )
    formula = limit.get("ops_formula", limit.get("flop_formula", ""))  # older: flop_formula
    lines.append(f"- operations counted: {formula}")
    sweep = limit.get("thread_sweep", {})
    layouts = sweep.get("layouts", [])
    if layouts:
        first = layouts[0]
        lines += [
            "",
            f"Thread layouts of the engine alone (`engine.generate`, {first['windows']} windows "
            f"of the first {first['sentences']} sentences, {first['prompt_tokens_per_window']:.0f}"
            f" prompt and {first['output_tokens_per_window']:.1f} generated tokens per window; "
            "each at its best batch, median of its passes):",
            "",
            _row(
                [
                    "inter × intra",
                    "best batch",
                    "sentences/s",
                    "windows/s",
                    "GOP/s",
                    "of peak",
                    "others %",
                    "",
                ]
            ),
            _row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---"]),
        ]
        best = sweep.get("best") or {}
        for e in layouts:
            marks = []
            if e.get("server_default"):
                marks.append("server default")
            if (e["inter_threads"], e["intra_threads"]) == (
                best.get("inter_threads"),
                best.get("intra_threads"),
            ):
                marks.append("**best**")
            lines.append(
                _row(
                    [
                        f"{e['inter_threads']} × {e['intra_threads']}",
                        str(e["batch_size"]),
                        _num(e["sentences_per_s"]),
                        _num(e["windows_per_s"]),
                        _num(e.get("gops"), 2),
                        _pct(e.get("fraction_of_peak")),
                        _others(e.get("load")),
                        ", ".join(marks),
                    ]
                )
            )
        lines += ["", f"Thread layout: {sweep.get('text', '')}."]
    lines.append("")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Print (or publish) the markdown table of a results folder.

    ``python -m bench.report DIR`` prints it; ``--publish OUT`` copies the table, the plot and
    summary.json into OUT (a tracked folder such as ``bench/published``) with the image link
    written as ``--image-link`` (the plot's path as seen from the README that embeds it).
    """
    parser = argparse.ArgumentParser(description="Markdown table of a benchmark run.")
    parser.add_argument("results", type=Path, help="bench/results/<timestamp>-<profile>")
    parser.add_argument("--publish", type=Path, help="copy table, plots and summary here")
    parser.add_argument("--image-link", default=PLOT, help=f"image link (default {PLOT})")
    args = parser.parse_args(argv)
    summary = json.loads((args.results / "summary.json").read_text(encoding="utf-8"))
    table = markdown_table(summary, args.image_link)
    if args.publish:
        args.publish.mkdir(parents=True, exist_ok=True)
        for name in (PLOT, *SCALING_PLOTS.values()):
            if (args.results / name).is_file():
                shutil.copy2(args.results / name, args.publish / name)
        # the published summary carries the ratios and target checks the table shows
        published = {**summary, "ratios": compute_ratios(summary)}
        (args.publish / "summary.json").write_text(
            json.dumps(published, indent=2) + "\n", encoding="utf-8"
        )
        (args.publish / "table.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
