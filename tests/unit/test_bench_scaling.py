"""Scaling and limit pieces of the benchmark: FLOPs, documents, label lists, records, report."""

import copy
from types import SimpleNamespace

import pytest
from test_bench_report import fake_summary

from bench.flops import ModelShape, call_flops, decoder_flops, encoder_flops, total_flops
from bench.limit import layout_entry, limit_record, thread_layouts
from bench.plot import SCALING_PLOTS, plot_scaling
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
from instructner.labels import get_verbalizer
from instructner.types import Sentence

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


def test_flops_of_a_tiny_model_match_a_count_by_hand():
    # encoder, 3 tokens: q, k, v, o (3x2 @ 2x2), wi (3x2 @ 2x3), wo (3x3 @ 3x2),
    # scores (3x2 @ 2x3) and weights @ values (3x3 @ 3x2)
    encoder = 4 * _matmul(3, 2, 2) + _matmul(3, 2, 3) + _matmul(3, 3, 2) + 2 * _matmul(3, 2, 3)
    assert encoder == 240
    assert encoder_flops(TINY, 3) == encoder
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
    assert decoder_flops(TINY, 3, 2) == decoder
    assert call_flops(TINY, 3, 1, ended=True) == 544
    assert call_flops(TINY, 3, 2, ended=False) == 544  # same steps: no end token decoded
    assert total_flops(TINY, [(3, 1, True), (3, 1, True)]) == 1088


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
    assert encoder_flops(shape, 3) - encoder_flops(TINY, 3) == _matmul(3, 2, 3)
    assert not ModelShape.from_config({**config, "feed_forward_proj": "relu"}).gated
    with pytest.raises(ValueError, match="negative"):
        call_flops(TINY, -1, 0)


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
    assert record["gflop_per_request"] == pytest.approx(2 * 544 / 2 / 1e9)
    unstable = point_record(
        2, ["x"], documents, answers, {"throughput": 4.0, "stable": False}, None
    )
    assert unstable["p50_ms"] is None and "gflop_per_request" not in unstable


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
        "gflop_per_request": 0.12 * k,
        "engine_avg_batch": 6.0,
        "load": {"others": 0.5},
        "stable": p50 is not None,
    }


def _label_point(n, tokens, rate):
    point = _doc_point(1, rate, 1000 / rate)
    point.update(label_count=n, prompt_tokens_per_window=tokens, gflop_per_request=tokens / 500)
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
    assert labels["gflop_ratio"] == pytest.approx(316 / 60)
    assert labels["ms_per_100_prompt_tokens"] == pytest.approx(75 / 256 * 100)
    assert "one label count" in label_growth([_label_point(4, 60.0, 40.0)])["text"]


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
    record = limit_record(
        TINY, "int8", _peak(), _sweep(), (2, 1), {"name": "pipeline", "seconds": 1.0, "gop": 5.0}
    )
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
    same = limit_record(TINY, "int8", _peak(), _sweep()[:1], (1, 1), None, "2 instances × 1")
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
