"""Calibration measures on hand-built predictions, and the calibrate command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructner.cli import main
from instructner.research.calibration import (
    ScoredEntity,
    brier_score,
    expected_calibration_error,
    reliability_bins,
    threshold_table,
)

REPO = Path(__file__).resolve().parents[2]


def entities(*pairs: tuple[float, bool]) -> list[ScoredEntity]:
    return [ScoredEntity({"m": score}, correct) for score, correct in pairs]


def test_a_perfectly_calibrated_set_has_zero_ece():
    # bin 0.2-0.3: 1 of 4 correct at score 0.25; bin 0.7-0.8: 3 of 4 at 0.75
    items = entities(*[(0.25, i == 0) for i in range(4)], *[(0.75, i < 3) for i in range(4)])
    assert expected_calibration_error(items, "m") == pytest.approx(0.0)


def test_overconfident_scores_give_the_weighted_gap_as_ece():
    items = entities((0.95, False), (0.95, True), (0.15, False), (0.15, False))
    # bin 0.9-1.0: accuracy 0.5 vs 0.95 -> 0.45; bin 0.1-0.2: 0 vs 0.15 -> 0.15; weights 1/2
    assert expected_calibration_error(items, "m") == pytest.approx(0.30)
    assert brier_score(items, "m") == pytest.approx((0.95**2 + 0.05**2 + 2 * 0.15**2) / 4)


def test_a_score_of_one_falls_in_the_last_bin():
    rows = reliability_bins(entities((1.0, True)), "m")
    assert rows[-1]["count"] == 1 and sum(r["count"] for r in rows) == 1


def test_threshold_table_gives_precision_of_kept_and_recall_over_gold():
    items = entities((0.9, True), (0.6, True), (0.4, False), (0.2, False))
    table = threshold_table(items, gold=4, method="m", thresholds=(0.0, 0.5, 0.95))
    assert table == [
        {"threshold": 0.0, "kept": 4, "precision": 0.5, "recall": 0.5},
        {"threshold": 0.5, "kept": 2, "precision": 1.0, "recall": 0.5},
        {"threshold": 0.95, "kept": 0, "precision": 0.0, "recall": 0.0},
    ]


def test_calibrate_writes_json_csv_and_plots_for_the_shipped_model(tmp_path, capsys):
    code = main(
        [
            "calibrate",
            "--model",
            str(REPO / "models" / "default"),
            "--out",
            str(tmp_path),
            "--corpora",
            "conll2003",
            "--limit",
            "8",
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "calibration.json").read_text())
    assert summary["conll2003"]["sentences"] == 8
    assert set(summary["all"]["methods"]) == {"geometric_mean", "minimum", "product"}
    assert (tmp_path / "thresholds.csv").read_text().startswith("corpus,threshold,kept")
    report = (tmp_path / "calibration.md").read_text()
    assert "| conll2003 | 8 |" in report and "| all | 8 |" in report
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    assert (tmp_path / "precision-recall-threshold.png").stat().st_size > 1000
    pooled = summary["all"]["methods"]
    served = summary["served_method"]
    assert pooled[served]["ece"] == min(method["ece"] for method in pooled.values())
    assert json.loads(capsys.readouterr().out)["served"] == served


def test_calibrate_refuses_an_unknown_corpus(tmp_path, caplog):
    argv = ["calibrate", "--model", "models/default", "--out", str(tmp_path), "--corpora", "x"]
    assert main(argv) == 2
    assert "unknown corpora ['x']: expected some of conll2003" in caplog.text
