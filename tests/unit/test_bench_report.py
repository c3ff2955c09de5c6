"""Ratios, target checks, the final line and the markdown table of a benchmark summary."""

import copy

import pytest

from bench.report import compute_ratios, final_line, markdown_table


def _path(name, throughput, batch=1, f1=0.5, p99_ms=100.0, tokens=24.0):
    return {
        "name": name,
        "title": name.replace("_", " "),
        "batch_size": batch,
        "throughput": throughput,
        "p50_ms": p99_ms / 2,
        "p99_ms": p99_ms,
        "mean_output_tokens": tokens,
        "quality": {"f1": f1},
        "notes": "",
    }


def _level(model, concurrency, throughput, p99_us, stable=True):
    return {
        "model": model,
        "concurrency": concurrency,
        "throughput": throughput,
        "stable": stable,
        "p50_us": p99_us / 2 if p99_us else None,
        "p90_us": p99_us,
        "p99_us": p99_us,
        "server_queue_us": 1000.0,
        "server_compute_infer_us": 2000.0,
    }


def fake_summary():
    """A smoke run's summary without the scaling and limit records (as older runs wrote)."""
    return {
        "profile": "smoke",
        "started": "2026-11-25T19:10:35+00:00",
        "machine": {
            "cpu_model": "AMD EPYC",
            "usable_cpus": 2,
            "simd": ["avx2"],
            "memory_gib": 23.5,
        },
        "tritonserver_version": "2.51.0",
        "perf_analyzer_version": "perf_analyzer from tritonclient 2.51.0",
        "load": {"served": {"others": 0.05}},
        "model": {"description": "random-init stand-in"},
        "workload": {"sentences": 24, "mean_prompt_tokens": 61.3},
        "generation": {"note": "24 new tokens forced in every path."},
        "served": {
            "levels": [
                _level("engine", 1, 6.0, 200_000.0),
                _level("instruction_ner", 1, 5.0, 230_000.0),
                _level("engine", 8, 40.0, 500_000.0),
                _level("instruction_ner", 8, 30.0, 600_000.0),
            ],
            "quality": {"f1": 0.5},
            "mean_output_tokens": 24.0,
            "rss_kib": {"after_warmup": 400 * 1024, "after_run": 410 * 1024},
            "level_stats": [
                {
                    "model": "instruction_ner",
                    "concurrency": 1,
                    "models": {
                        "instruction_ner": {
                            "avg_queue_us": 500.0,
                            "avg_compute_infer_us": 205_500.0,
                        },
                        "engine": {"avg_batch": 1.0, "avg_compute_infer_us": 200_000.0},
                    },
                },
                {
                    "model": "instruction_ner",
                    "concurrency": 8,
                    "load": {"others": 0.07},
                    "models": {"engine": {"avg_batch": 4.0}},
                },
                {
                    "model": "engine",
                    "concurrency": 8,
                    "load": {"others": 0.09},
                    "models": {"engine": {"avg_batch": 7.5}},
                },
            ],
        },
        "paths": [
            _path("transformers_batch1", 2.0),
            _path("transformers_batch8", 10.0, batch=8),
            _path("transformers_batch24", 20.0, batch=24),
            {
                "name": "instruction_ner_pypi_batch1",
                "title": "PyPI",
                "reason": "no network",
                "available": False,
            },
            _path("engine_inprocess_batch1", 6.5, p99_ms=180.0),
            _path("engine_inprocess_batchmax", 50.0, batch=24),
        ],
    }


@pytest.fixture
def summary():
    return fake_summary()


def test_speedups_use_the_best_served_level_and_the_best_transformers_batch(summary):
    ratios = compute_ratios(summary)
    assert ratios["best_served_concurrency"] == 8
    assert ratios["speedup_vs_transformers_batch1"] == pytest.approx(15.0)
    assert ratios["transformers_best_batch"] == 24
    assert ratios["speedup_vs_transformers_best"] == pytest.approx(1.5)
    assert ratios["served_over_engine_inprocess_best"] == pytest.approx(0.6)


def test_p99_at_concurrency_1_is_compared_with_the_engine_model_and_in_process(summary):
    ratios = compute_ratios(summary)
    assert ratios["p99_c1_instruction_ner_over_engine_model"] == pytest.approx(1.15)
    assert ratios["p99_c1_instruction_ner_over_engine_inprocess"] == pytest.approx(230 / 180)
    assert ratios["targets"]["p99_c1_vs_engine_alone"]["met"] is True


def test_the_p99_target_is_checked_on_the_median_of_the_concurrency_1_rounds(summary):
    summary = copy.deepcopy(summary)
    summary["served"]["c1_rounds"] = [
        {
            "round": 2,
            "engine": _level("engine", 1, 6.0, 200_000.0),
            "instruction_ner": _level("instruction_ner", 1, 4.0, 300_000.0),
        },
        {
            "round": 3,
            "engine": _level("engine", 1, 6.0, 200_000.0),
            "instruction_ner": _level("instruction_ner", 1, 4.0, 260_000.0),
        },
    ]
    ratios = compute_ratios(summary)
    assert ratios["p99_c1_rounds"] == pytest.approx([1.15, 1.5, 1.3])
    assert ratios["p99_c1_instruction_ner_over_engine_model"] == pytest.approx(1.3)
    assert ratios["targets"]["p99_c1_vs_engine_alone"]["met"] is False
    assert "1.30× (median of 3 alternating rounds: 1.15, 1.50, 1.30)" in markdown_table(summary)


def test_a_summary_without_extra_rounds_checks_its_single_concurrency_1_pair(summary):
    ratios = compute_ratios(summary)
    assert ratios["p99_c1_rounds"] == pytest.approx([1.15])
    assert "median of" not in markdown_table(summary)


def test_the_table_calls_out_a_machine_whose_speed_moved_during_the_run(summary):
    summary = copy.deepcopy(summary)
    speeds = [40.0] * 5 + [30.0] * 5  # half the phases a quarter slower
    summary["load"] = {f"phase{i}": {"others": 0.0, "speed_probe": v} for i, v in enumerate(speeds)}
    summary["load"]["quiet_check_served"] = {"others": 0.0}
    table = markdown_table(summary)
    assert "before each of 10 phases" in table
    assert "median 35.0 M steps/s, 10th–90th percentile 30.0–40.0 (a spread of 33%)" in table
    assert "**Its speed moved by more than 20% during the run" in table


def test_one_slow_probe_among_many_does_not_call_the_run_drifting(summary):
    summary = copy.deepcopy(summary)
    speeds = [19.0] + [36.0] * 9 + [37.0] * 9
    summary["load"] = {f"phase{i}": {"others": 0.0, "speed_probe": v} for i, v in enumerate(speeds)}
    table = markdown_table(summary)
    assert "10th–90th percentile 36.0–37.0 (a spread of 3%), lowest 19.0." in table
    assert "moved by more than" not in table


def test_a_speedup_whose_two_phases_ran_at_different_host_speeds_is_not_comparable(summary):
    summary = copy.deepcopy(summary)
    summary["load"] = {
        "instruction_ner_c8": {"others": 0.0, "speed_probe": 30.0, "speed_probe_end": 31.0},
        # fast when it began, slow when it ended: the host changed speed within the phase
        "transformers_batch1": {"others": 0.0, "speed_probe": 30.0, "speed_probe_end": 17.0},
        "transformers_batch24": {"others": 0.0, "speed_probe": 29.0, "speed_probe_end": 30.5},
        "engine_inprocess_batchmax": {"others": 0.0, "speed_probe": 18.0},
    }
    targets = compute_ratios(summary)["targets"]
    assert targets["throughput_vs_transformers_batch1"]["met"] is None
    assert targets["throughput_vs_transformers_batch1"]["speed_moved"] == [17.0, 31.0]
    assert targets["throughput_vs_transformers_batch1"]["value"] == pytest.approx(15.0)
    assert "speed_moved" not in targets["throughput_vs_transformers_best"]  # 29-31: within 20%
    assert targets["throughput_vs_transformers_best"]["met"] is False
    assert targets["served_vs_engine_inprocess_best"]["speed_moved"] == [18.0, 31.0]
    table = markdown_table(summary)
    assert (
        "(≥ 25.0×: **not comparable**: the host's speed probe read 17.0–31.0 around the two "
        "phases)" in table
    )


def test_a_speedup_without_probes_around_its_phases_keeps_its_verdict(summary):
    summary = copy.deepcopy(summary)
    summary["load"] = {"transformers_batch1": {"others": 0.0, "speed_probe": 30.0}}
    targets = compute_ratios(summary)["targets"]
    assert targets["throughput_vs_transformers_batch1"]["met"] is False
    assert "speed_moved" not in targets["throughput_vs_transformers_batch1"]


def test_a_run_without_speed_probes_says_nothing_of_them(summary):
    assert "speed_probe" not in markdown_table(summary)


def test_triton_overhead_is_reported_per_concurrency(summary):
    overhead = compute_ratios(summary)["triton_overhead"]
    assert [o["concurrency"] for o in overhead] == [1, 8]
    assert overhead[1]["engine_over_ensemble_throughput"] == pytest.approx(40 / 30)
    assert overhead[1]["ensemble_over_engine_p99"] == pytest.approx(1.2)
    assert overhead[1]["engine_avg_batch_via_instruction_ner"] == 4.0
    assert overhead[1]["engine_avg_batch_alone"] == 7.5
    assert overhead[0]["engine_avg_batch_alone"] is None


def test_server_side_overhead_compares_the_same_requests(summary):
    overhead = compute_ratios(summary)["server_side_overhead_c1"]
    assert overhead["overhead_ms"] == pytest.approx(6.0)
    assert overhead["ratio"] == pytest.approx(1.03)
    assert overhead["same_requests"] is True
    assert "(same requests, so free of load drift)" in markdown_table(summary)
    assert "+6.0 ms, 1.030×" in markdown_table(summary)


def test_server_side_overhead_with_the_engine_embedded_uses_the_engine_measured_alone(summary):
    embedded = copy.deepcopy(summary)
    stats = embedded["served"]["level_stats"]
    del stats[0]["models"]["engine"]  # instruction_ner called no engine model
    stats.append(
        {
            "model": "engine",
            "concurrency": 1,
            "models": {"engine": {"avg_batch": 1.0, "avg_compute_infer_us": 150_000.0}},
        }
    )
    overhead = compute_ratios(embedded)["server_side_overhead_c1"]
    assert overhead["same_requests"] is False
    assert overhead["overhead_ms"] == pytest.approx(56.0)
    assert "engine compute from the engine model measured alone" in markdown_table(embedded)


def test_targets_are_missed_when_served_is_too_slow(summary):
    slow = copy.deepcopy(summary)
    slow["served"]["levels"][3]["throughput"] = 8.0
    targets = compute_ratios(slow)["targets"]
    assert targets["throughput_vs_transformers_batch1"]["met"] is False
    assert targets["throughput_vs_transformers_best"]["met"] is False
    assert targets["throughput_vs_transformers_best"]["value"] == pytest.approx(0.4)


def test_a_path_that_could_not_run_gives_no_ratio_instead_of_failing(summary):
    assert compute_ratios(summary)["speedup_vs_pypi_package"] is None


def test_f1_difference_between_served_and_engine_is_checked(summary):
    worse = copy.deepcopy(summary)
    worse["served"]["quality"]["f1"] = 0.4
    ratios = compute_ratios(worse)
    assert ratios["targets"]["same_f1_served_vs_engine"]["met"] is False
    assert ratios["f1_max_abs_difference"] == pytest.approx(0.1)


def test_final_line_has_both_speedups_with_two_decimals(summary):
    line = final_line(compute_ratios(summary))
    assert line == "speedup_vs_transformers_batch1=15.00 speedup_vs_transformers_best=1.50"


def test_final_line_says_nan_when_batch1_is_missing(summary):
    summary["paths"] = [p for p in summary["paths"] if p["name"] != "transformers_batch1"]
    line = final_line(compute_ratios(summary))
    assert line == "speedup_vs_transformers_batch1=nan speedup_vs_transformers_best=1.50"


def test_ratios_need_a_served_measurement(summary):
    summary["served"]["levels"] = [
        lv for lv in summary["served"]["levels"] if lv["model"] == "engine"
    ]
    with pytest.raises(ValueError, match="no instruction_ner measurement"):
        compute_ratios(summary)


def test_markdown_table_lists_levels_paths_and_the_reason_a_path_did_not_run(summary):
    table = markdown_table(summary)
    assert "| 8 | 30.0 | 300 | 600 | 600 | 1 | 2 | 40.0 | 250 | 500 | 4.0 / 7.5 | 7 / 9 |" in table
    assert "| PyPI | – | n/a | – | – | – | – | – | not run: no network |" in table
    assert "served / transformers best batch (24): 1.50× (≥ 3.0×: **missed**)" in table
    assert "on AMD EPYC, 2 cores (avx2)" in table


def test_served_against_the_engine_in_process_and_the_overhead_are_checked_against_targets(
    summary,
):
    ratios = compute_ratios(summary)
    targets = ratios["targets"]
    inprocess = targets["served_vs_engine_inprocess_best"]
    assert inprocess["target"] == 0.8
    assert inprocess["value"] == ratios["served_over_engine_inprocess_best"]
    assert inprocess["met"] is (inprocess["value"] >= 0.8)
    assert targets["overhead_c1_ms"] == {"value": pytest.approx(6.0), "target": 3.0, "met": False}
    assert "+6.0 ms, 1.030× (≤ 3 ms: **missed**)" in markdown_table(summary)


def test_markdown_table_marks_unstable_levels(summary):
    summary["served"]["levels"][2] = _level("engine", 8, 40.0, None, stable=False)
    assert "| 40.0 (unstable) | – | – |" in markdown_table(summary)


def test_table_says_when_serving_settings_differ_from_the_shipped_defaults(summary):
    summary["serving_config"] = {"bls_instances": 8, "engine_instances": 1}
    summary["serving_overrides"] = {"bls_instances": 8}
    assert "changed from the shipped defaults: bls_instances=8" in markdown_table(summary)
    summary["serving_overrides"] = {}
    assert "Serving settings (shipped defaults): engine_instances 1, bls_instances 8." in (
        markdown_table(summary)
    )


def test_publish_copies_table_plot_and_summary_with_the_image_link(summary, tmp_path, capsys):
    import json

    from bench.report import main

    results, published = tmp_path / "run", tmp_path / "published"
    results.mkdir()
    (results / "summary.json").write_text(json.dumps(summary))
    (results / "throughput_vs_p99.png").write_bytes(b"png")
    assert main([str(results), "--publish", str(published), "--image-link", "bench/p.png"]) == 0
    table = (published / "table.md").read_text()
    assert table.rstrip().endswith("![throughput vs p99 latency](bench/p.png)")
    assert (published / "throughput_vs_p99.png").read_bytes() == b"png"
    assert json.loads((published / "summary.json").read_text())["profile"] == "smoke"
    assert "| 8 | 30.0 |" in capsys.readouterr().out


def test_scores_cost_compares_the_served_path_with_and_without_scores(summary):
    summary["served"]["levels"] += [
        _level("instruction_ner_no_scores", 1, 5.5, 220_000.0),
        _level("instruction_ner_no_scores", 8, 32.0, 550_000.0),
    ]
    ratios = compute_ratios(summary)
    assert [(r["concurrency"], round(r["cost"], 4)) for r in ratios["scores_cost"]] == [
        (1, round(1 - 5.0 / 5.5, 4)),
        (8, round(1 - 30.0 / 32.0, 4)),
    ]
    assert ratios["scores_cost_best"] == pytest.approx(1 - 30.0 / 32.0)
    assert ratios["targets"]["entity_scores_cost"]["met"] is True
    assert "best against best: +6.2% of throughput (target ≤ 10%)" in markdown_table(summary)


def test_scores_cost_over_ten_percent_misses_its_target(summary):
    summary["served"]["levels"].append(_level("instruction_ner_no_scores", 8, 40.0, 1.0))
    assert compute_ratios(summary)["targets"]["entity_scores_cost"]["met"] is False


def test_a_run_without_the_no_scores_path_reports_no_cost(summary):
    ratios = compute_ratios(summary)
    assert ratios["scores_cost"] == [] and ratios["scores_cost_best"] is None
    assert ratios["targets"]["entity_scores_cost"]["met"] is None


def test_the_in_process_reference_is_the_faster_layout_and_says_which(summary):
    best = _path("engine_inprocess_batchmax_best_layout", 60.0, batch=24)
    best["layout"] = "the best layout of the thread sweep"
    summary["paths"].append(best)
    ratios = compute_ratios(summary)
    assert ratios["served_over_engine_inprocess_best"] == pytest.approx(0.5)
    assert ratios["engine_inprocess_reference"]["name"] == "engine_inprocess_batchmax_best_layout"
    assert "at its best batch (24, the best layout of the thread sweep): 0.50×" in (
        markdown_table(summary)
    )
    best["throughput"] = 40.0  # the server's layout is faster: it stays the reference
    assert compute_ratios(summary)["served_over_engine_inprocess_best"] == pytest.approx(0.6)
    # the F1 check compares with our engine at the server's layout
    best["quality"] = {"f1": 0.1}
    assert compute_ratios(summary)["targets"]["same_f1_served_vs_engine"]["met"] is True


def test_the_config_line_names_where_the_steps_run_and_older_summaries_lack_it(summary):
    summary["serving_config"] = {"steps": "inline", "bls_instances": 8}
    assert (
        "Serving settings (shipped defaults): steps inline (prompts and answers in the BLS "
        "itself: one engine model call per window), bls_instances 8." in markdown_table(summary)
    )
    summary["serving_config"] = {"bls_instances": 8}
    assert "Serving settings (shipped defaults): bls_instances 8." in markdown_table(summary)
    summary["serving_config"] = {"steps": "embedded", "engine_instances": 2, "bls_instances": 8}
    assert (
        "Serving settings (shipped defaults): steps embedded (the CPU engine inside the BLS "
        "itself: no model call per window), engine_instances 2." in markdown_table(summary)
    )


def test_images_are_linked_only_when_the_run_wrote_them(summary):
    summary["plots"] = {"written": [], "errors": {"throughput_vs_p99.png": "ValueError: x"}}
    assert "![" not in markdown_table(summary)
    summary["plots"] = {"written": ["throughput_vs_p99.png"], "errors": {}}
    assert markdown_table(summary, "a/b.png").count("![") == 1
    assert "](a/b.png)" in markdown_table(summary, "a/b.png")
