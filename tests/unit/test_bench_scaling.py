"""Scaling and limit pieces of the benchmark: operations, documents, labels, records, report."""

import copy
from dataclasses import replace
from types import SimpleNamespace

import pytest
from test_bench_report import fake_summary

from bench.baselines import RecordingEngine
from bench.flops import (
    ModelShape,
    call_ended,
    call_ops,
    decoder_ops,
    encoder_ops,
    engine_call,
    total_ops,
    window_call,
)
from bench.limit import (
    add_pipeline,
    best_layout,
    layout_entry,
    limit_record,
    thread_layouts,
    window_prompts,
)
from bench.machine import CpuMonitor
from bench.perf import PerfError, PerfLevel
from bench.plot import SCALING_PLOTS, plot_scaling, plot_summary, scaling_plots
from bench.profiles import SMOKE
from bench.report import limit_section, markdown_table, scaling_section
from bench.scaling import (
    Document,
    Point,
    answers_from_results,
    describe_labels,
    doc_length_growth,
    documents_input_data,
    fit_line,
    label_growth,
    label_list,
    make_documents,
    plan_points,
    point_record,
    sweeps,
    window_ms,
)
from instructner.method.labels import get_verbalizer
from instructner.method.types import Sentence

TINY = ModelShape(
    d_model=2,
    d_ff=3,
    num_layers=1,
    num_decoder_layers=1,
    num_heads=1,
    d_kv=2,
    vocab_size=5,
    gated=False,
)


def _matmul(m, k, n):
    return 2 * m * k * n


def test_operations_of_a_tiny_model_match_a_count_by_hand():
    # encoder, 3 tokens: q, k, v, o (3x2 @ 2x2), wi (3x2 @ 2x3), wo (3x3 @ 3x2),
    # scores (3x2 @ 2x3) and weights @ values (3x3 @ 3x2)
    encoder = 4 * _matmul(3, 2, 2) + _matmul(3, 2, 3) + _matmul(3, 3, 2) + 2 * _matmul(3, 2, 3)
    assert encoder == 240
    assert encoder_ops(TINY, 3) == encoder
    # decoder, 2 steps (1 generated token + the end token); step t attends to t positions
    cross_keys_values = 2 * _matmul(3, 2, 2)
    steps = 0
    for t in (1, 2):
        projections = 4 * _matmul(1, 2, 2) + 2 * _matmul(1, 2, 2)  # self q,k,v,o; cross q,o
        ffn = _matmul(1, 2, 3) + _matmul(1, 3, 2)
        self_attention = _matmul(1, 2, t) + _matmul(1, t, 2)
        cross_attention = _matmul(1, 2, 3) + _matmul(1, 3, 2)
        lm_head = _matmul(1, 2, 5)
        steps += projections + ffn + self_attention + cross_attention + lm_head
    decoder = cross_keys_values + steps
    assert decoder == 304
    assert decoder_ops(TINY, 3, 2) == decoder
    assert call_ops(TINY, 3, 1, ended=True) == 544
    assert call_ops(TINY, 3, 2, ended=False) == 544  # same steps: no end token decoded
    assert total_ops(TINY, [(3, 1, True), (3, 1, True)]) == 1088


def test_a_gated_feed_forward_has_a_third_matrix_and_decoder_layers_default_to_encoders():
    config = {
        "d_model": 2,
        "d_ff": 3,
        "num_layers": 1,
        "num_heads": 1,
        "d_kv": 2,
        "vocab_size": 5,
        "feed_forward_proj": "gated-gelu",
    }
    shape = ModelShape.from_config(config)
    assert shape.gated and shape.num_decoder_layers == 1
    assert encoder_ops(shape, 3) - encoder_ops(TINY, 3) == _matmul(3, 2, 3)
    assert not ModelShape.from_config({**config, "feed_forward_proj": "relu"}).gated
    with pytest.raises(ValueError, match="negative"):
        call_ops(TINY, -1, 0)


def _sentence(*tokens):
    return Sentence(tokens=tokens, tags=("O",) * len(tokens))


def test_documents_join_consecutive_sentences_by_line_breaks_and_drop_the_remainder():
    sentences = [_sentence("A", "b"), _sentence("C"), _sentence("D", "e", "f"), _sentence("G")]
    assert make_documents(sentences, 2) == [
        Document("A b\nC", 2, 3),
        Document("D e f\nG", 2, 4),
    ]
    assert [d.text for d in make_documents(sentences[:3], 2)] == ["A b\nC"]
    assert make_documents(sentences, 1)[2] == Document("D e f", 1, 3)
    with pytest.raises(ValueError, match="over the server's limit of 4"):
        make_documents(sentences, 2, max_chars=4)
    with pytest.raises(ValueError, match="at least one sentence"):
        make_documents(sentences, 0)
    with pytest.raises(ValueError, match="cannot make a document of 5"):
        make_documents(sentences, 5)
    data = documents_input_data(["A b\nC"], ["person", "location"])
    assert data["data"][0]["TEXT"] == ["A b\nC"]
    assert data["data"][0]["LABELS"] == {"content": ["person", "location"], "shape": [2]}


def test_label_lists_start_with_conll_and_grow_from_the_other_corpora_without_repeats():
    conll = get_verbalizer("conll2003").words
    movie = get_verbalizer("mit_movie").words
    atis = get_verbalizer("atis").words
    assert label_list(4) == conll
    assert label_list(12) == conll + movie[:8]
    long = label_list(83)
    assert len(long) == 83 and len({w.casefold() for w in long}) == 83
    assert long[:16] == conll + movie
    assert long[-1] == atis[59]  # 4 + 12 + 7 restaurant words (its "location" is CoNLL's)
    assert describe_labels(12) == "12: conll2003's 4 + mit_movie's first 8 (actor … review)"
    assert describe_labels(83) == (
        "83: conll2003's 4 + mit_movie's 12 + mit_restaurant's 7 + atis's first 60 "
        f"(aircraft code … {atis[59]}) (mit_restaurant's 'location' already listed)"
    )
    with pytest.raises(ValueError, match="within 1..106"):
        label_list(107)


def test_the_shared_point_is_measured_once_and_belongs_to_both_sweeps():
    points = plan_points((1, 5, 20), (4, 12), 4)
    assert points == [Point(1, 4), Point(5, 4), Point(20, 4), Point(1, 12)]
    assert Point(20, 4).tag == "_doc20_labels4"
    records = [
        {"sentences_per_request": p.sentences_per_request, "label_count": p.label_count}
        for p in points
    ]
    split = sweeps(records, 4)
    assert [r["sentences_per_request"] for r in split["doc_length"]] == [1, 5, 20]
    assert [r["label_count"] for r in split["labels"]] == [4, 12]


def test_the_window_holds_the_wanted_requests_within_the_profile_bounds():
    assert window_ms(2500, 6000, 16, pass_s=1.0, requests=80) == 2500  # 200 ms
    assert window_ms(2500, 6000, 16, pass_s=8.0, requests=40) == 3500  # 3200 ms, rounded up
    assert window_ms(2500, 6000, 16, pass_s=20.0, requests=4) == 6000


def _result(*windows):
    return SimpleNamespace(
        windows=[
            SimpleNamespace(input_tokens=n, output_tokens=g, output_limit_reached=limit)
            for n, g, limit in windows
        ]
    )


def test_a_point_gives_rates_per_request_sentence_and_word_and_the_servers_token_counts():
    answers = answers_from_results([_result((3, 1, False), (3, 2, True)), _result()], 2.0)
    assert answers.windows == ((3, 1, True), (3, 2, False))
    assert answers.windows_per_request == 1.0
    documents = [Document("a\nb", 2, 10), Document("c\nd", 2, 30)]
    level = {"throughput": 4.0, "p50_us": 500_000.0, "p99_us": 900_000.0, "stable": True}
    record = point_record(2, ["x", "y"], documents, answers, level, TINY)
    assert record["requests_per_s"] == 4.0
    assert record["sentences_per_s"] == 8.0
    assert record["words_per_s"] == 80.0
    assert record["ms_per_sentence"] == 125.0
    assert record["p50_ms"] == 500.0 and record["p50_ms_per_sentence"] == 250.0
    assert record["prompt_tokens_per_request"] == 3.0
    assert record["prompt_tokens_per_window"] == 3.0
    assert record["output_tokens_per_window"] == 1.5
    assert record["output_limit_windows"] == 1
    assert record["gop_per_request"] == pytest.approx(2 * 544 / 2 / 1e9)
    unstable = point_record(
        2, ["x"], documents, answers, {"throughput": 4.0, "stable": False}, None
    )
    assert unstable["p50_ms"] is None and "gop_per_request" not in unstable


def test_a_line_fit_is_exact_on_a_line_and_needs_two_distinct_points():
    assert fit_line([1, 5, 20], [12.0, 20.0, 50.0]) == pytest.approx((10.0, 2.0))
    assert fit_line([5, 5], [1.0, 2.0]) is None


def _doc_point(k, rate, p50):
    return {
        "sentences_per_request": k,
        "label_count": 4,
        "requests_per_s": rate,
        "sentences_per_s": rate * k,
        "words_per_s": rate * k * 14,
        "ms_per_sentence": 1000 / (rate * k),
        "p50_ms": p50,
        "p99_ms": None if p50 is None else 2 * p50,
        "p50_ms_per_sentence": None if p50 is None else p50 / k,
        "windows_per_request": 1.1 * k,
        "words_per_request": 14.0 * k,
        "prompt_tokens_per_request": 60.0 * k,
        "prompt_tokens_per_window": 60.0,
        "output_tokens_per_window": 17.0,
        "gop_per_request": 0.12 * k,
        "engine_avg_batch": 6.0,
        "load": {"others": 0.5},
        "stable": p50 is not None,
    }


def _label_point(n, tokens, rate):
    point = _doc_point(1, rate, 1000 / rate)
    point.update(label_count=n, prompt_tokens_per_window=tokens, gop_per_request=tokens / 500)
    return point


def test_growth_states_cost_per_sentence_at_both_ends_and_the_fit():
    growth = doc_length_growth([_doc_point(20, 2.5, 4000.0), _doc_point(1, 40.0, 100.0)])
    assert growth["ms_per_sentence"] == [25.0, 20.0]
    assert growth["ms_per_sentence_ratio"] == pytest.approx(0.8)
    assert growth["p50_fit_ms"]["per_sentence"] == pytest.approx(3900 / 19)
    assert growth["text"].startswith("1 → 20 sentences per request: 25.0 → 20.0 ms")
    assert "p50 per request ≈" in growth["text"]
    unstable = _doc_point(20, 2.5, None)
    unstable["mean_ms"] = 4000.0
    growth = doc_length_growth([_doc_point(1, 40.0, 100.0), unstable])
    assert growth["p50_fit_ms"]["per_sentence"] == pytest.approx(3900 / 19)
    assert "2 points, 1 of them the mean latency of an unstable level)" in growth["text"]
    assert "4000 (mean)" in "\n".join(
        scaling_section(
            {"scaling": {**_summary_with_scaling()["scaling"], "doc_length": [unstable]}}
        )
    )
    labels = label_growth([_label_point(83, 316.0, 10.0), _label_point(4, 60.0, 40.0)])
    assert labels["ms_per_sentence_ratio"] == pytest.approx(4.0)
    assert labels["prompt_tokens_ratio"] == pytest.approx(316 / 60)
    assert labels["gop_ratio"] == pytest.approx(316 / 60)
    assert labels["ms_per_100_prompt_tokens"] == pytest.approx(75 / 256 * 100)
    assert "one label count measured" in label_growth([_label_point(4, 60.0, 40.0)])["text"]


def test_thread_layouts_come_from_the_core_count():
    assert thread_layouts(2) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert thread_layouts(1) == [(1, 1)]
    assert (4, 2) in thread_layouts(4) and (4, 4) not in thread_layouts(4)


def _peak():
    return {
        "int8": {
            "available": True,
            "peak_gops": 1000.0,
            "median_gops": 900.0,
            "op": "int_mm",
            "n": 2048,
            "threads": 2,
        },
        "float32": {"available": False, "op": "matmul", "reason": "RuntimeError: no"},
    }


def _sweep():
    calls = [(3, 1, True)] * 10  # 5440 operations
    return [
        layout_entry(1, 1, 8, [2e-6, 1e-6, 3e-6], 10, calls, TINY),
        layout_entry(2, 1, 8, [4e-6], 10, calls, TINY),
        layout_entry(2, 1, 64, [8e-6], 10, calls, TINY),
    ]


def test_the_limit_compares_achieved_rates_with_the_peak_and_the_default_layout_with_the_best():
    record = limit_record(TINY, "int8", _peak(), _sweep(), (2, 1))
    add_pipeline(record, "pipeline", 1.0, 5.0, "the server's layout")
    sweep = record["thread_sweep"]
    assert sweep["best"] == {"inter_threads": 1, "intra_threads": 1}
    assert sweep["default_is_best"] is False
    assert sweep["default_over_best"] == pytest.approx(0.5)
    assert "is NOT the best layout measured" in sweep["text"]
    assert [e["batch_size"] for e in sweep["layouts"]] == [8, 8]  # each layout at its best batch
    best, default, pipeline = record["achieved"]
    assert best["gops"] == pytest.approx(5440 / 2e-6 / 1e9)
    assert best["fraction_of_peak"] == pytest.approx(5440 / 2e-6 / 1e9 / 1000)
    assert "server default layout (inter 2 × intra 1, batch 8)" in default["source"]
    assert pipeline["gops"] == 5.0 and pipeline["fraction_of_peak"] == pytest.approx(0.005)
    assert pipeline["source"] == "pipeline (whole in-process pipeline, the server's layout)"
    assert best_layout(record) == (1, 1)
    same = limit_record(TINY, "int8", _peak(), _sweep()[:1], (1, 1), "2 instances × 1")
    assert same["thread_sweep"]["default_is_best"] is True and len(same["achieved"]) == 1
    assert same["thread_sweep"]["text"].startswith(
        "the server's default (inter 1 × intra 1; 2 instances × 1) is the best layout measured"
    )


def _summary_with_scaling():
    summary = fake_summary()
    doc = [_doc_point(1, 40.0, 100.0), _doc_point(20, 2.5, None)]
    labels = [_label_point(4, 60.0, 40.0), _label_point(83, 316.0, 10.0)]
    summary["scaling"] = {
        "model": "instruction_ner",
        "concurrency": 8,
        "pool_sentences": 80,
        "base_labels": 4,
        "label_lists": {
            "83": {"description": describe_labels(83), "words": list(label_list(83))},
            "4": {"description": describe_labels(4), "words": list(label_list(4))},
        },
        "doc_length": doc,
        "labels": labels,
        "growth": {"doc_length": doc_length_growth(doc), "labels": label_growth(labels)},
    }
    summary["limit"] = limit_record(TINY, "int8", _peak(), _sweep(), (2, 1))
    return summary


def test_the_report_has_scaling_tables_plots_and_the_fraction_of_peak():
    summary = _summary_with_scaling()
    table = markdown_table(summary, "../bench/published/throughput_vs_p99.png")
    assert "**Scaling with document length** (instruction_ner at concurrency 8" in table
    assert (
        "| 20 | 22.0 | 280 | 1200 | 2.50 (unstable) | 50.0 | 700 | – | – | 20.0 | – | 6.0 | 50 |"
        in (table)
    )
    assert "| 83 | 316.0 | 17.0 | 0.632 | 10.0 | 100 | 200 | 100.0 | 6.0 | 50 |" in table
    assert "4: conll2003's 4; 83: conll2003's 4 + mit_movie's 12" in table
    assert "![throughput and latency against the label count]" in table
    assert "(../bench/published/scaling_labels.png)" in table
    assert "int8 int_mm 1000 GOP/s (median 900, n = 2048, 2 threads)" in table
    assert "float32 matmul: not available (RuntimeError: no)" in table
    assert "of the int8 peak" in table
    assert "| 1 × 1 | 8 | 5000000.0 |" in table
    assert "is NOT the best layout measured" in table


def test_an_older_summary_or_a_failed_measurement_still_makes_a_report():
    assert "Scaling" not in markdown_table(fake_summary())
    assert scaling_section(fake_summary()) == [] and limit_section(fake_summary()) == []
    failed = fake_summary()
    failed["scaling"] = {"error": "PerfError: exited 99"}
    failed["limit"] = {"error": "RuntimeError: no engine"}
    table = markdown_table(failed)
    assert "**Scaling**: not measured: PerfError: exited 99" in table
    assert "**The limit**: not measured: RuntimeError: no engine" in table


def test_the_scaling_plots_are_written_from_a_summary(tmp_path):
    summary = copy.deepcopy(_summary_with_scaling())
    written = plot_scaling(summary, tmp_path)
    assert sorted(p.name for p in written) == sorted(SCALING_PLOTS.values())
    assert all(p.stat().st_size > 1000 for p in written)
    assert [p.name for p in plot_scaling(fake_summary(), tmp_path / "old")] == [
        SCALING_PLOTS["concurrency"]
    ]
    assert list(scaling_plots(fake_summary())) == [SCALING_PLOTS["concurrency"]]
    no_points = copy.deepcopy(summary)
    no_points["scaling"]["doc_length"] = []
    assert SCALING_PLOTS["doc_length"] not in scaling_plots(no_points)
    assert plot_summary(summary, tmp_path / "summary.png").stat().st_size > 1000


def test_every_path_says_ended_the_same_way_the_engines_flag_where_it_has_one():
    from instructner.serving.engine import Generated

    # an answer stopped by loop detection: under the limit, yet no end token
    looped = Generated(token_ids=[5, 6, 5, 6], finished=False)
    assert engine_call(9, looped) == (9, 4, False)
    assert engine_call(9, Generated(token_ids=[5], finished=True)) == (9, 1, True)
    assert call_ended(False, output_limit_reached=False) is False
    # a served window has only output_limit_reached: not at the limit counts as ended
    window = SimpleNamespace(input_tokens=9, output_tokens=4, output_limit_reached=False)
    assert window_call(window) == (9, 4, True)
    assert call_ended(None, output_limit_reached=True) is False


def test_the_in_process_engine_records_the_engines_own_finished_flag():
    from instructner.serving.engine import Generated

    class Fake:
        kind, vocab_size, decoder_start_token_id, eos_token_id = "fake", 10, 0, 1
        closed = False

        def generate(self, inputs, max_new_tokens, end_id, return_log_probs=False):
            return [Generated([2] * len(ids), finished=len(ids) > 1) for ids in inputs]

        def close(self):
            self.closed = True

    engine = RecordingEngine(Fake())
    outputs = engine.generate([[3], [3, 4]], [8, 8], 1)
    assert [o.finished for o in outputs] == [False, True]
    assert engine.calls == [(1, 1, False), (2, 2, True)]
    engine.close()
    assert engine.engine.closed


def test_the_sweeps_prompts_are_the_servers_windows():
    from instructner.serving.limits import Limits
    from instructner.serving.tokenizer import PromptTokenizer
    from instructner.serving.window_steps import preprocess

    tokenizer, limits, labels = PromptTokenizer(), Limits(), ("person", "location")
    prompts = window_prompts(
        ["EU rejects German call .\nPeter Blackburn"], labels, tokenizer, limits
    )
    assert len(prompts) == 2  # a line break ends a window
    assert prompts[1] == preprocess(tokenizer, limits, "Peter Blackburn", "ner", labels)[1]


def test_growth_leaves_out_points_without_a_served_rate():
    zero = _doc_point(5, 40.0, 100.0)
    zero.update(requests_per_s=0.0, sentences_per_s=0.0, ms_per_sentence=None)
    growth = doc_length_growth([_doc_point(20, 2.5, 4000.0), zero, _doc_point(1, 40.0, 100.0)])
    assert growth["skipped"] == 1 and growth["from_sentences"] == 1
    assert growth["text"].endswith("(1 point without a served rate left out).")
    alone = doc_length_growth([zero, _doc_point(1, 40.0, 100.0)])
    assert alone["text"].startswith("one document length measured: no growth to state")
    assert doc_length_growth([zero])["text"].startswith("no document length measured")
    zero_labels = _label_point(12, 120.0, 20.0)
    zero_labels["ms_per_sentence"] = None
    labels = label_growth([_label_point(83, 316.0, 10.0), zero_labels, _label_point(4, 60.0, 40.0)])
    assert labels["skipped"] == 1 and labels["ms_per_sentence_ratio"] == pytest.approx(4.0)
    assert "model operations (GOP) per request" in labels["text"]


class _FakeAnalyzer:
    def __init__(self, failing):
        self.failing, self.calls = failing, []

    def measure(self, model, data, concurrency, settings, tag="", retry_cap_ms=None, margin_s=None):
        self.calls.append((tag, settings.window_ms, retry_cap_ms, margin_s))
        if tag == self.failing:
            raise PerfError(f"perf_analyzer {model} c={concurrency} exited 99: boom")
        return PerfLevel(model, concurrency, throughput=4.0, p50_us=2e5, p99_us=4e5)


def test_a_failed_point_is_recorded_and_the_other_points_are_still_measured(monkeypatch, tmp_path):
    import bench.scaling as scaling
    import bench.served as served

    def fake_results(url, texts, labels, concurrency):
        return [_result((60 + len(labels), 5, False)) for _ in texts]

    monkeypatch.setattr(served, "served_results", fake_results)
    monkeypatch.setattr(served, "server_statistics", lambda url, admin: {})
    monkeypatch.setattr(scaling, "snapshot_delta", lambda before, after: {})
    profile = replace(SMOKE, doc_lengths=(1, 2), label_counts=(4, 5), scaling_window_cap_ms=6000)
    pool = [_sentence("A", "b"), _sentence("C"), _sentence("D", "e"), _sentence("F")]
    analyzer = _FakeAnalyzer(failing="_doc2_labels4")
    seen = []
    record = scaling.run_scaling(
        profile, pool, TINY, 1000, "url", {}, analyzer, tmp_path, CpuMonitor(), on_point=seen.append
    )
    assert [r["sentences_per_request"] for r in record["doc_length"]] == [1]
    assert [r["label_count"] for r in record["labels"]] == [4, 5]
    assert record["failed"] == [
        {
            "sentences_per_request": 2,
            "label_count": 4,
            "tag": "_doc2_labels4",
            "error": "PerfError: perf_analyzer instruction_ner c=8 exited 99: boom",
        }
    ]
    assert len(seen) == 3 and "error" in seen[1]
    assert all(cap == 6000 and margin > 60 for _, _, cap, margin in analyzer.calls)
    assert "one document length measured" in record["growth"]["doc_length"]["text"]
    table = "\n".join(scaling_section({**fake_summary(), "scaling": record}))
    assert "Not measured: 2 sentences/request with 4 labels (PerfError:" in table
    assert table.count("Not measured") == 1  # the failed point is in the document sweep only
