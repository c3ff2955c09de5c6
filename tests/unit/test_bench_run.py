"""The benchmark's command-line overrides of serving settings."""

import pytest

from bench.run import parse_overrides


def test_overrides_parse_known_settings_as_integers():
    assert parse_overrides(["bls_instances=8", "engine_queue_delay_us=500"]) == {
        "bls_instances": 8,
        "engine_queue_delay_us": 500,
    }


def test_overrides_reject_unknown_names_and_non_integers():
    with pytest.raises(ValueError, match="expected NAME=INT with NAME one of max_batch_size"):
        parse_overrides(["model_dir=x"])
    with pytest.raises(ValueError, match="'eight' is not an integer"):
        parse_overrides(["bls_instances=eight"])


def test_generation_is_forced_when_every_engine_call_made_the_limit():
    from bench.run import generation_record

    record = generation_record(
        False,
        24,
        {"transformers_batch1": [24, 24, 24], "served_instruction_ner": [24, 48, 24]},
        {"served_instruction_ner": [1, 2, 1]},
    )
    assert record["forced_equal_tokens"] is True
    assert record["tokens_per_engine_call"] == {
        "transformers_batch1": [24],
        "served_instruction_ner": [24],
    }
    assert record["multi_window_sentences"] == 1
    assert "1 of 3 CoNLL lines hold more than one sentence" in record["note"]
    assert "up to 33% more tokens than the baselines" in record["note"]


def test_generation_says_when_a_path_stopped_early():
    from bench.run import generation_record

    record = generation_record(False, 24, {"a": [24, 24], "b": [24, 7]}, {})
    assert record["forced_equal_tokens"] is False
    assert "NOT equal across paths (tokens per call: a [24]; b [7, 24])" in record["note"]


def test_a_trained_model_note_explains_windows_and_loop_stops_without_a_token_ratio():
    from bench.run import generation_record

    record = generation_record(
        True,
        128,
        {"transformers_batch1": [30, 128], "served_instruction_ner": [12, 20]},
        {"served_instruction_ner": [1, 2]},
    )
    assert "1 of 2 CoNLL lines hold more than one sentence" in record["note"]
    assert "stop an answer that loops" in record["note"]
    assert "more tokens than the baselines" not in record["note"]


def test_the_serving_record_is_json_with_every_path_as_a_string(tmp_path):
    import json

    from bench.run import _serving_record
    from instructner.deploy.build import BuildSettings

    record = _serving_record(BuildSettings(model_dir=tmp_path / "m", out_dir=tmp_path / "o"))
    assert json.loads(json.dumps(record)) == record
    assert record["model_dir"] == str(tmp_path / "m")
    assert isinstance(record["engines"], list)


def _settings(tmp_path, **changes):
    from dataclasses import replace

    from instructner.deploy.build import BuildSettings

    settings = BuildSettings(model_dir=tmp_path / "m", out_dir=tmp_path / "o")
    return replace(settings, engine_instances=2, inter_threads=1, intra_threads=1, **changes)


def _fake_engine_runs(monkeypatch, fail_second=False):
    from bench import baselines
    from bench.paths import PathResult

    calls = []

    def fake(*args, **kwargs):
        calls.append(kwargs)
        if fail_second and len(calls) == 2:
            raise RuntimeError("no engine")
        names = (["engine_inprocess_batch1"] if kwargs.get("batch_one", True) else []) + [
            kwargs.get("name", "engine_inprocess_batchmax")
        ]
        return [
            PathResult(name, name, 8, 8, 1.0, [4] * 8, layout=kwargs["layout"]) for name in names
        ]

    monkeypatch.setattr(baselines, "run_engine_inprocess", fake)
    return calls


def test_our_engine_runs_at_the_sweeps_best_layout_too_when_it_is_not_the_servers(
    monkeypatch, tmp_path
):
    from bench.run import run_engine_paths

    calls = _fake_engine_runs(monkeypatch)
    paths = run_engine_paths(tmp_path, tmp_path, _settings(tmp_path), None, (1, 2), None, None)
    assert [p.name for p in paths] == [
        "engine_inprocess_batch1",
        "engine_inprocess_batchmax",
        "engine_inprocess_batchmax_best_layout",
    ]
    server, best = calls
    assert (server["inter_threads"], server["intra_threads"], server["engine_instances"]) == (
        1,
        1,
        2,
    )
    assert (best["inter_threads"], best["intra_threads"], best["batch_one"]) == (1, 2, False)
    assert "engine_instances" not in best  # one translator of inter x intra
    assert paths[2].layout.startswith("the best layout of the thread sweep")
    assert "not the server's inter 2 × intra 1" in paths[2].layout


def test_our_engine_runs_once_when_the_server_layout_is_the_best(monkeypatch, tmp_path):
    from bench.run import run_engine_paths

    calls = _fake_engine_runs(monkeypatch)
    paths = run_engine_paths(tmp_path, tmp_path, _settings(tmp_path), None, (2, 1), None, None)
    assert len(calls) == 1 and len(paths) == 2
    assert paths[1].layout == "the server's layout, also the best layout of the thread sweep"
    paths = run_engine_paths(tmp_path, tmp_path, _settings(tmp_path), None, None, None, None)
    assert "found no best layout" in paths[1].layout


def test_a_failed_best_layout_run_is_reported_and_the_server_layout_stays(monkeypatch, tmp_path):
    from bench.paths import Unavailable
    from bench.run import run_engine_paths

    _fake_engine_runs(monkeypatch, fail_second=True)
    paths = run_engine_paths(tmp_path, tmp_path, _settings(tmp_path), None, (1, 2), None, None)
    assert [p.name for p in paths][:2] == ["engine_inprocess_batch1", "engine_inprocess_batchmax"]
    assert isinstance(paths[2], Unavailable) and paths[2].reason == "RuntimeError: no engine"


def test_the_in_process_paths_achieved_rates_join_the_limit_record():
    from bench.flops import ModelShape
    from bench.paths import PathResult
    from bench.run import add_pipelines

    shape = ModelShape(2, 3, 1, 1, 1, 2, 5, False)
    path = PathResult(
        "engine_inprocess_batchmax",
        "ours, batch 8",
        8,
        8,
        2.0,
        [1],
        engine_calls=[(3, 1, True)],
        layout="the server's layout",
    )
    batch1 = PathResult("engine_inprocess_batch1", "ours, batch 1", 1, 8, 2.0, [1])
    record = {"compute_type": "int8", "gemm_peak": {}, "achieved": []}
    add_pipelines(record, [batch1, path], shape)
    (entry,) = record["achieved"]
    assert entry["source"] == "ours, batch 8 (whole in-process pipeline, the server's layout)"
    assert entry["gops"] == 544 / 2.0 / 1e9 and entry["fraction_of_peak"] is None
    failed = {"error": "RuntimeError: x"}
    add_pipelines(failed, [path], shape)
    assert failed == {"error": "RuntimeError: x"}


def test_a_figure_that_fails_is_recorded_and_the_others_are_drawn(monkeypatch, tmp_path):
    import bench.run as run

    def broken(summary, path):
        raise ValueError("matplotlib said no")

    def fine(path):
        path.write_bytes(b"png")
        return path

    monkeypatch.setattr(run, "plot_summary", broken)
    monkeypatch.setattr(run, "scaling_plots", lambda summary: {"scaling_labels.png": fine})
    record = run.write_plots({}, tmp_path)
    assert record == {
        "written": ["scaling_labels.png"],
        "errors": {"throughput_vs_p99.png": "ValueError: matplotlib said no"},
    }
    assert (tmp_path / "scaling_labels.png").read_bytes() == b"png"


def test_a_failed_scaling_point_is_said_as_failed(capsys):
    from bench.run import _say_scaling_point

    _say_scaling_point({"sentences_per_request": 20, "label_count": 4, "error": "PerfError: x"})
    assert "20 sentences/request, 4 labels: FAILED (PerfError: x)" in capsys.readouterr().out
