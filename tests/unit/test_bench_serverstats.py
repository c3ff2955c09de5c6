"""Server statistics deltas and process-tree memory (fake /proc, no server)."""

import os

import pytest

from bench.serverstats import process_tree_rss, snapshot_delta, snapshot_from_json

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _stats(requests, executions, queue_ns, infer_ns):
    model = {
        "name": "engine",
        "inference_count": str(requests),
        "execution_count": str(executions),
        "inference_stats": {
            "success": {"count": str(requests)},
            "queue": {"ns": str(queue_ns)},
            "compute_infer": {"ns": str(infer_ns)},
        },
    }
    return {"model_stats": [model]}


def test_snapshot_reads_string_counters_and_missing_sections_as_zero():
    snapshot = snapshot_from_json({"model_stats": [{"name": "preprocessing"}]})
    assert snapshot == {
        "preprocessing": {
            "requests": 0,
            "queue_ns": 0,
            "compute_infer_ns": 0,
            "inferences": 0,
            "executions": 0,
        }
    }


def test_delta_gives_average_batch_queue_and_compute_per_request():
    before = snapshot_from_json(_stats(10, 10, 1_000_000, 10_000_000))
    after = snapshot_from_json(_stats(50, 15, 5_000_000, 90_000_000))
    delta = snapshot_delta(before, after)["engine"]
    assert (delta.requests, delta.executions) == (40, 5)
    assert delta.avg_batch == pytest.approx(8.0)
    assert delta.avg_queue_us == pytest.approx(100.0)
    assert delta.avg_compute_infer_us == pytest.approx(2000.0)


def test_delta_of_an_idle_model_has_no_averages():
    same = snapshot_from_json(_stats(3, 3, 1, 1))
    delta = snapshot_delta(same, same)["engine"]
    assert delta.requests == 0
    assert delta.avg_batch is None and delta.avg_queue_us is None


def _process(proc, pid, parent, name, pages):
    folder = proc / str(pid)
    folder.mkdir()
    (folder / "stat").write_text(f"{pid} ({name} x) S {parent} 0 0 0 0 0 0 0 0 0 0 5 6 0 0\n")
    (folder / "statm").write_text(f"1000 {pages} 0 0 0 0 0\n")
    (folder / "comm").write_text(name + "\n")


def test_rss_sums_the_server_and_all_its_descendants_only(tmp_path):
    _process(tmp_path, 10, 1, "tritonserver", 100)
    _process(tmp_path, 11, 10, "triton_python_b", 50)
    _process(tmp_path, 12, 11, "child", 5)
    _process(tmp_path, 20, 1, "other", 999)
    (tmp_path / "self").mkdir()  # not a pid folder
    rss = process_tree_rss(10, proc=tmp_path)
    assert rss["total_kib"] == 155 * PAGE_KIB
    assert [p["pid"] for p in rss["processes"]] == [10, 11, 12]
    assert rss["processes"][0]["name"] == "tritonserver"
