"""The soak's workload and verdict (bench/soak.py), without a server."""

from bench.soak import (
    RSS_GROWTH_SLACK_MIB,
    Call,
    growth_per_minute,
    summary_markdown,
    verdict,
    workload,
)

LABELS = ("organization", "location", "person", "miscellaneous")


def record(**changes):
    base = {
        "started": "2026-11-25 20:00",
        "machine": {
            "cpu_model": "AMD EPYC",
            "usable_cpus": 2,
            "memory_gib": 23.5,
            "gpu": "none (CPU only)",
        },
        "served": "the fixed-answer test T5",
        "minutes": 10,
        "concurrency": 8,
        "calls": 100,
        "throughput_per_s": 0.2,
        "outcomes": {"answered": 95, "rejected as expected": 5},
        "latency_ms": {"p50": 40.0, "p99": 500.0, "max": 900.0},
        "rss_mib": {"first": 400.0, "max": 420.0, "last": 410.0, "second_half_mib_per_min": 0.5},
        "server_alive_at_end": True,
        "cpu": {"others": 0.4, "loadavg_1min_end": 4.0},
        "samples": [{}] * 3,
    }
    base.update(changes)
    base["problems"] = verdict(base)
    return base


def test_workload_mixes_tasks_documents_and_requests_the_server_must_reject():
    calls = workload(LABELS)
    tasks = {c.task for c in calls if c.reject is None}
    assert tasks == {"ner", "extract", "type"}
    bad = [c for c in calls if c.reject is not None]
    assert len(bad) == len(range(0, len(calls) - len(bad), 20))
    assert any("\n" in c.text for c in calls), "multi-window documents are part of the load"
    for call in calls:
        if call.task == "type":
            assert all(f" {e} " in f" {call.text} " for e in call.entities)


def test_a_clean_run_passes():
    assert verdict(record()) == []
    assert summary_markdown(record()).startswith("# Soak 2026-11-25 20:00: PASSED")


def test_wrong_answers_unexpected_errors_and_a_dead_server_fail_the_soak():
    problems = verdict(
        record(
            outcomes={"answered": 90, "wrong answer": 2, "unexpected error": 1},
            server_alive_at_end=False,
        )
    )
    assert problems == [
        "2 calls: wrong answer",
        "1 calls: unexpected error",
        "tritonserver was not running at the end",
    ]


def test_memory_growth_beyond_the_bound_fails_the_soak():
    grown = 400.0 * 1.25 + RSS_GROWTH_SLACK_MIB + 1
    problems = verdict(
        record(rss_mib={"first": 400.0, "max": grown, "last": grown, "second_half_mib_per_min": 9})
    )
    assert problems == [f"resident memory grew from 400.0 to {grown} MiB"]
    assert "Problems:" in summary_markdown(
        record(rss_mib={"first": 1, "max": 999, "last": 999, "second_half_mib_per_min": 9})
    )


def test_a_bad_call_carries_the_message_it_must_be_rejected_with():
    bad = [c for c in workload(LABELS) if c.reject is not None]
    assert {c.reject for c in bad} == {"control character U+0000", "a section marker"}
    assert Call("ner", "x").reject is None


def test_growth_per_minute_is_the_slope_over_the_second_half():
    samples = [
        {"t_s": t, "rss_mib": 100.0 + (t / 60 if t >= 60 else 50)} for t in range(0, 130, 10)
    ]
    assert growth_per_minute(samples) == 1.0
    assert growth_per_minute(samples[:1]) == 0.0
