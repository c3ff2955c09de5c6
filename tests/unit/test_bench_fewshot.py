"""The few-shot table's summary: mean ± std per cell, paired differences, the resume key."""

import json

import pytest

from bench.fewshot import done_cells, markdown, summarize


def row(base, shots, draw, variant, f1, sentences=10):
    return {
        "base": base,
        "shots": shots,
        "draw": draw,
        "variant": variant,
        "f1": f1,
        "sentences": sentences,
    }


ROWS = [
    row("b", 5, 0, "ner", 0.10),
    row("b", 5, 1, "ner", 0.20),
    row("b", 5, 2, "ner", 0.30),
    row("b", 5, 0, "ner+aux", 0.15),
    row("b", 5, 1, "ner+aux", 0.20),
    row("b", 5, 2, "ner+aux", 0.40),
]


def test_summary_gives_mean_and_sample_std_in_percent_per_variant():
    (cell,) = summarize(ROWS)
    assert cell["ner"] == {"draws": 3, "mean": 20.0, "std": 10.0, "sentences": 10.0}
    assert cell["ner+aux"]["mean"] == pytest.approx(25.0)


def test_summary_pairs_the_variants_by_draw():
    (cell,) = summarize(ROWS)
    assert cell["difference"]["draws"] == 3
    assert cell["difference"]["mean"] == pytest.approx(5.0)
    assert cell["difference"]["aux_ahead"] == 2  # draw 1 ties
    low, high = cell["difference"]["ci95"]  # 5 ± 4.303 * 5 / sqrt(3)
    assert (low, high) == (pytest.approx(-7.42, abs=0.01), pytest.approx(17.42, abs=0.01))


def test_summary_leaves_a_missing_variant_empty_instead_of_failing():
    (cell,) = summarize(ROWS[:3])
    assert cell["ner+aux"]["mean"] is None and cell["difference"]["draws"] == 0
    assert "| b | 5 | 10.0 | 3 | 20.0 ± 10.0 | – | – | – | 0 of 0 |" in markdown([cell], "c")


def test_done_cells_are_read_back_so_an_interrupted_run_resumes(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:2]))
    assert done_cells(results) == {("b", 5, 0, "ner"), ("b", 5, 1, "ner")}
    assert done_cells(tmp_path / "missing.jsonl") == set()
