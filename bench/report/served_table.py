"""The report's opening and its served part.

The machine and workload, the serving settings, the served table (instruction_ner against
the engine model alone at each concurrency), the cost of entity scores, the in-process paths
table and the ratio lines with their targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.report.markdown_cells import ms, num, others, row
from bench.report.ratios import (
    TARGET_OVERHEAD_C1_MS,
    TARGET_P99_C1,
    TARGET_SCORES_COST,
    TARGET_VS_BATCH1,
    TARGET_VS_BEST,
    TARGET_VS_INPROCESS,
)
from bench.report.speed_probe import speed_note
from bench.report.summary_lookups import (
    ENGINE,
    ENSEMBLE,
    Summary,
    engine_batch,
    level,
    level_load,
    levels,
)

# serving setting ``steps``: where instruction_ner (the BLS) builds prompts and parses answers
STEP_PLACES = {
    "embedded": "the CPU engine inside the BLS itself: no model call per window",
    "inline": "prompts and answers in the BLS itself: one engine model call per window",
    # older summaries: the step models (removed; bench/published/steps measured them)
    "models": "prompts and answers through the preprocessing and postprocessing models",
}
_SERVING_KEYS = (
    "steps",  # where the BLS builds prompts and parses answers; older summaries lack it
    "max_batch_size",
    "engine_instances",
    "inter_threads",
    "intra_threads",
    "bls_instances",
    "step_instances",
    "engine_queue_delay_us",
    "bls_queue_delay_us",
    "step_queue_delay_us",  # older summaries
)


def _config_line(summary: Summary) -> str:
    config = summary.get("serving_config", {})

    def setting(key: str) -> str:
        note = STEP_PLACES.get(str(config[key])) if key == "steps" else None
        return f"{key} {config[key]}" + (f" ({note})" if note else "")

    # with the engine embedded, instruction_ner has the engine's instances and calls no step
    # model: the BLS and step instance counts are not used
    unused = (
        {"bls_instances", "step_instances", "bls_queue_delay_us", "step_queue_delay_us"}
        if config.get("steps") == "embedded"
        else set()
    )
    shown = ", ".join(setting(k) for k in _SERVING_KEYS if k in config and k not in unused)
    overrides = summary.get("serving_overrides") or {}
    if overrides:
        changed = ", ".join(f"{k}={v}" for k, v in overrides.items())
        return f"Serving settings: {shown} (**changed from the shipped defaults: {changed}**)."
    return f"Serving settings (shipped defaults): {shown}."


def opening_lines(summary: Summary) -> list[str]:
    """Return the report's opening: machine, load, model, workload and serving settings."""
    machine = summary["machine"]
    load = summary.get("load", {})
    served_load = load.get("served", {})
    model = summary["model"]
    return [
        f"Measured {summary['started'][:16].replace('T', ' ')} UTC with `make bench` "
        f"(profile {summary['profile']}) on {machine['cpu_model']}, "
        f"{machine['usable_cpus']} cores ({', '.join(machine['simd']) or 'no AVX2'}), "
        f"{machine['memory_gib']} GiB, no GPU; Triton {summary.get('tritonserver_version', '?')}, "
        f"{summary.get('perf_analyzer_version', 'perf_analyzer')}. Other processes used "
        f"{served_load.get('others', 0) * 100:.0f}% of the machine during the load test "
        "(see `load` in summary.json)." + speed_note(load),
        "",
        f"Model: {model['description']}. Workload: the first {summary['workload']['sentences']} "
        f"CoNLL-2003 test sentences ({summary['workload']['mean_prompt_tokens']:.0f} prompt "
        f"tokens on average), {summary['generation']['note']}",
        "",
        _config_line(summary),
        "",
    ]


def _served_row(summary: Summary, served: Mapping[str, Any]) -> str:
    """Return the served table's row of one instruction_ner level and the engine alone."""
    concurrency = served["concurrency"]
    engine = level(summary, ENGINE, concurrency) or {}
    flag = "" if served.get("stable", True) else " (unstable)"
    eng_flag = "" if engine.get("stable", True) else " (unstable)"
    return row(
        [
            str(concurrency),
            num(served["throughput"]) + flag,
            ms(served.get("p50_us")),
            ms(served.get("p90_us")),
            ms(served.get("p99_us")),
            ms(served.get("server_queue_us")),
            ms(served.get("server_compute_infer_us")),
            num(engine.get("throughput")) + eng_flag,
            ms(engine.get("p50_us")),
            ms(engine.get("p99_us")),
            num(engine_batch(summary, ENSEMBLE, concurrency))
            + " / "
            + num(engine_batch(summary, ENGINE, concurrency)),
            others(level_load(summary, ENSEMBLE, concurrency))
            + " / "
            + others(level_load(summary, ENGINE, concurrency)),
        ]
    )


def served_table(summary: Summary) -> list[str]:
    """Return the served table: instruction_ner and the engine alone at each concurrency."""
    lines = [
        "**Served, perf_analyzer over gRPC, one sentence per request** (latencies in ms; "
        "queue and compute are the server's averages for the model called; others % is the "
        "share of the machine other processes took meanwhile; engine batch is the engine "
        "model's average executed batch; both as instruction_ner / engine alone, the engine "
        "model on the same prompts, asked for log-probabilities as instruction_ner asks it)",
        "",
        row(
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
        row(["---:"] * 12),
    ]
    lines += [_served_row(summary, served) for served in levels(summary, ENSEMBLE)]
    return lines


def scores_cost_lines(ratios: Mapping[str, Any]) -> list[str]:
    """Return the cost of entity scores, per concurrency and best against best (none if not run)."""
    if not ratios.get("scores_cost"):
        return []
    costs = ", ".join(
        f"c{cost['concurrency']} {cost['throughput_without_scores']:.1f} → "
        f"{cost['throughput_with_scores']:.1f} sent/s ({cost['cost'] * 100:+.1f}%)"
        for cost in ratios["scores_cost"]
    )
    return [
        "",
        "Entity scores (RETURN_SCORES true, the default, against false; same run): "
        f"{costs}; best against best: {ratios['scores_cost_best'] * 100:+.1f}% of throughput "
        f"(target ≤ {TARGET_SCORES_COST * 100:.0f}%).",
    ]


def _path_row(path: Mapping[str, Any]) -> str:
    """Return the in-process table's row of one path (a path that did not run says why)."""
    if not path.get("available", True):
        return row(
            [path["title"], "–", "n/a", "–", "–", "–", "–", "–", "not run: " + path["reason"]]
        )
    return row(
        [
            path["title"],
            str(path["batch_size"]),
            num(path["throughput"]),
            num(path.get("p50_ms"), 0),
            num(path.get("p99_ms"), 0),
            num(path["quality"]["f1"], 3),
            num(path["mean_output_tokens"]),
            others(path.get("load")),
            path.get("notes", ""),
        ]
    )


def inprocess_table(summary: Summary, ratios: Mapping[str, Any]) -> list[str]:
    """Return the table of the in-process paths, headed by the best served level."""
    served = summary["served"]
    best_concurrency = ratios["best_served_concurrency"]
    lines = [
        "",
        "**Same sentences, same checkpoint, same generation length, in one process**",
        "",
        row(
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
        row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---"]),
        row(
            [
                f"**served `instruction_ner`** (best concurrency {best_concurrency})",
                "dynamic",
                num(ratios["best_served_throughput"]),
                "–",
                "–",
                num(served["quality"]["f1"], 3),
                num(served["mean_output_tokens"]),
                others(level_load(summary, ENSEMBLE, best_concurrency)),
                "RESULT entities from the server",
            ]
        ),
    ]
    lines += [_path_row(path) for path in summary["paths"]]
    return lines


def _reference(ratios: Mapping[str, Any]) -> str:
    """Say which in-process path is the reference: its batch and thread layout."""
    reference = ratios.get("engine_inprocess_reference")
    if not reference:
        return ""
    layout = f", {reference['layout']}" if reference.get("layout") else ""
    return f" ({reference.get('batch_size')}{layout})"


def _rounds_note(rounds: Sequence[float]) -> str:
    if len(rounds) < 2:
        return ""
    each = ", ".join(f"{r:.2f}" for r in rounds)
    return f"(median of {len(rounds)} alternating rounds: {each}) "


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


def _verdict(target: Mapping[str, Any]) -> str:
    """Say whether a target was met, missed, not measured or not comparable."""
    moved = target.get("speed_moved")
    if moved:
        return (
            f"**not comparable**: the host's speed probe read {moved[0]:.1f}–"
            f"{moved[1]:.1f} around the two phases"
        )
    met = target["met"]
    return "n/a" if met is None else ("met" if met else "**missed**")


def ratio_lines(summary: Summary, ratios: Mapping[str, Any]) -> list[str]:
    """Return the ratio lines, each with its target and verdict, and the server's memory."""
    targets = ratios["targets"]

    def verdict(key: str) -> str:
        return _verdict(targets[key])

    rss = summary["served"].get("rss_kib", {})
    return [
        "",
        "**Ratios** (target in brackets)",
        "",
        f"- served / transformers batch 1: {num(ratios['speedup_vs_transformers_batch1'], 2)}× "
        f"(≥ {TARGET_VS_BATCH1}×: {verdict('throughput_vs_transformers_batch1')})",
        f"- served / transformers best batch ({ratios['transformers_best_batch']}): "
        f"{num(ratios['speedup_vs_transformers_best'], 2)}× "
        f"(≥ {TARGET_VS_BEST}×: {verdict('throughput_vs_transformers_best')})",
        f"- served / PyPI instruction-ner: {num(ratios['speedup_vs_pypi_package'], 2)}×",
        f"- served / our engine in-process at its best batch{_reference(ratios)}: "
        f"{num(ratios['served_over_engine_inprocess_best'], 2)}× "
        f"(≥ {TARGET_VS_INPROCESS}×: {verdict('served_vs_engine_inprocess_best')})",
        f"- p99 at concurrency 1, instruction_ner / engine model alone: "
        f"{num(ratios['p99_c1_instruction_ner_over_engine_model'], 2)}× "
        f"{_rounds_note(ratios.get('p99_c1_rounds') or [])}"
        f"(≤ {TARGET_P99_C1}×: {verdict('p99_c1_vs_engine_alone')}); / engine in-process batch 1 "
        f"(first round): {num(ratios['p99_c1_instruction_ner_over_engine_inprocess'], 2)}×",
        _overhead_line(ratios.get("server_side_overhead_c1"))
        + f" (≤ {TARGET_OVERHEAD_C1_MS:.0f} ms: {verdict('overhead_c1_ms')})",
        f"- F1 served − F1 engine in-process: "
        f"{num(targets['same_f1_served_vs_engine']['value'], 3)} "
        f"({verdict('same_f1_served_vs_engine')}); largest F1 difference over all paths "
        f"{num(ratios['f1_max_abs_difference'], 3)}",
        f"- server resident memory (tritonserver + stubs): "
        f"{num(rss.get('after_warmup', 0) / 1024, 0)} MiB after warm-up, "
        f"{num(rss.get('after_run', 0) / 1024, 0)} MiB after the run",
        "",
    ]
