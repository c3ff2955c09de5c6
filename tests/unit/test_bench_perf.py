"""perf_analyzer output parsing and command line (no server, no perf_analyzer run)."""

from pathlib import Path

import pytest

from bench.perf import (
    PerfAnalyzer,
    PerfError,
    PerfLevel,
    parse_perf_csv,
    parse_unstable_passes,
    perf_command,
    retry_window_ms,
    run_timeout_s,
)
from bench.profiles import PerfSettings

HEADER = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,"
    "p50 latency,p90 latency,p95 latency,p99 latency"
)


def test_parse_perf_csv_maps_every_column_of_the_recipe_row():
    (level,) = parse_perf_csv(
        HEADER + "\n1,550.51,4,251,1154,20,216,159,1,1728,2011,2225,3683\n", "m"
    )
    assert level.model == "m"
    assert level.concurrency == 1
    assert level.throughput == pytest.approx(550.51)
    assert (level.p50_us, level.p90_us, level.p95_us, level.p99_us) == (1728, 2011, 2225, 3683)
    assert level.server_queue_us == 1154
    assert level.server_compute_infer_us == 216
    assert level.network_us == 251
    assert level.stable is True


def test_parse_perf_csv_keeps_one_level_per_row_in_order():
    rows = "\n1,10,0,0,0,0,0,0,0,1,2,3,4\n8,70,0,0,0,0,0,0,0,5,6,7,8\n"
    levels = parse_perf_csv(HEADER + rows, "engine")
    assert [(lv.concurrency, lv.throughput) for lv in levels] == [(1, 10.0), (8, 70.0)]


def test_parse_perf_csv_names_missing_columns():
    header = HEADER.replace(",p99 latency", "")
    with pytest.raises(PerfError, match="lacks column\\(s\\) p99 latency"):
        parse_perf_csv(header + "\n1,1,0,0,0,0,0,0,0,1,2,3\n", "m")


def test_parse_perf_csv_names_line_and_column_of_a_bad_cell():
    with pytest.raises(PerfError, match="line 2: Server Queue is 'n/a', not a number"):
        parse_perf_csv(HEADER + "\n1,1,0,0,n/a,0,0,0,0,1,2,3,4\n", "m")


def test_parse_perf_csv_rejects_a_header_without_rows():
    with pytest.raises(PerfError, match="no measurement row"):
        parse_perf_csv(HEADER + "\n", "m")


def test_unstable_level_averages_the_last_three_windows_and_has_no_percentiles():
    stdout = "\n".join(
        [
            "Request concurrency: 4",
            "  Pass [1] throughput: 1.0 infer/sec. Avg latency: 900 usec (std 1 usec). ",
            "  Pass [2] throughput: 3.0 infer/sec. Avg latency: 600 usec (std 3 usec). ",
            "  Pass [3] throughput: 6.0 infer/sec. Avg latency: 300 usec (std 4 usec). ",
            "  Pass [4] throughput: 9.0 infer/sec. Avg latency: 300 usec (std 4 usec). ",
            "Failed to obtain stable measurement within 4 measurement windows for concurrency 4.",
        ]
    )
    level = parse_unstable_passes(stdout, "engine", 4)
    assert level.stable is False
    assert level.throughput == pytest.approx(6.0)
    assert level.avg_latency_us == pytest.approx(400.0)
    assert level.p99_us is None


def test_unstable_output_without_windows_is_an_error():
    with pytest.raises(PerfError, match="no measurement window for engine c=8"):
        parse_unstable_passes("Failed to obtain stable measurement.", "engine", 8)


def test_perf_command_measures_one_concurrency_over_grpc_with_the_input_file():
    settings = PerfSettings(
        window_ms=5000, stability_percent=30, max_trials=20, retry_unstable=True
    )
    command = perf_command(
        Path("/pa"), "instruction_ner", "127.0.0.1:9", Path("in.json"), 8, settings, Path("o.csv")
    )
    text = " ".join(command)
    assert command[0] == "/pa"
    assert "-m instruction_ner -u 127.0.0.1:9 -i grpc --input-data in.json -b 1" in text
    assert "--concurrency-range 8:8:1" in text
    assert "--measurement-mode time_windows --measurement-interval 5000 -s 30 -r 20" in text
    assert "-f o.csv" in text


def _settings(window_ms=5000, trials=20, retry=True):
    return PerfSettings(
        window_ms=window_ms, stability_percent=30, max_trials=trials, retry_unstable=retry
    )


def test_the_retried_window_doubles_within_the_cap_and_is_skipped_at_the_cap():
    assert retry_window_ms(_settings(5000)) == 10_000
    assert retry_window_ms(_settings(5000), cap_ms=8000) == 8000
    assert retry_window_ms(_settings(20_000), cap_ms=20_000) is None  # cannot grow
    assert retry_window_ms(_settings(5000, retry=False), cap_ms=8000) is None


def test_a_run_may_take_its_windows_plus_the_margin():
    assert run_timeout_s(_settings(20_000, trials=20), 140.0) == pytest.approx(540.0)


def test_measure_caps_the_retry_and_derives_each_runs_timeout(monkeypatch, tmp_path):
    runs = []

    def fake_run(self, model, input_data, concurrency, settings, timeout_s, tag=""):
        runs.append((settings.window_ms, timeout_s))
        return PerfLevel(model, concurrency, 1.0, stable=False)

    monkeypatch.setattr(PerfAnalyzer, "_run", fake_run)
    analyzer = PerfAnalyzer(Path("/pa"), tmp_path, "127.0.0.1:9", tmp_path)
    level = analyzer.measure(
        "m", Path("in.json"), 8, _settings(12_000), retry_cap_ms=20_000, margin_s=100.0
    )
    assert not level.stable
    assert runs == [(12_000, 12 * 20 + 100.0), (20_000, 20 * 20 + 100.0)]
    runs.clear()
    analyzer.measure("m", Path("in.json"), 8, _settings(20_000), retry_cap_ms=20_000)
    assert runs == [(20_000, 900.0)]  # at the cap: no retry; no margin: the fixed timeout
