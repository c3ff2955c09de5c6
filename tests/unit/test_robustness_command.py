"""``instructner robustness`` on a small slice: the table, the JSON and the plot."""

from __future__ import annotations

import json
from pathlib import Path

from instructner.cli import main
from tests.shared_data import DATA_ROOT, needs_data

MODEL = Path(__file__).resolve().parents[2] / "models" / "default"


@needs_data
def test_robustness_prints_f1_per_variant_and_writes_json_table_and_plot(tmp_path, capsys):
    argv = ["robustness", "--model", str(MODEL), "--dataset", "conll2003", "--limit", "6"]
    argv += ["--variant", "plain", "--variant", "natural", "--variant", "case-lower"]
    assert main([*argv, "--data-root", str(DATA_ROOT), "--output", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0] == "| variant | conll2003 |"
    assert [line.split(" |")[0] for line in table.splitlines()[2:]] == [
        "| plain",
        "| natural",
        "| case-lower",
    ]
    report = json.loads((tmp_path / "robustness.json").read_text())
    plain = report["results"]["conll2003"]["plain"]
    assert plain["sentences"] == 6 and 0.0 <= plain["f1"] <= 100.0
    assert report["text_view"] == "folded" and report["limit"] == 6
    assert (tmp_path / "robustness.png").stat().st_size > 0


def test_robustness_redraws_a_stored_report_against_a_baseline(tmp_path, capsys):
    report = {"results": {"atis": {"plain": {"f1": 90.0}, "natural": {"f1": 88.5}}}}
    baseline = {"results": {"atis": {"plain": {"f1": 80.0}, "natural": {"f1": 70.0}}}}
    (tmp_path / "now.json").write_text(json.dumps(report))
    (tmp_path / "before.json").write_text(json.dumps(baseline))
    argv = ["robustness", "--model", str(MODEL), "--from-json", str(tmp_path / "now.json")]
    assert main([*argv, "--baseline", str(tmp_path / "before.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "| plain | 80.0 → 90.0 |"
    assert lines[3] == "| natural | 70.0 → 88.5 (-1.5) |"


def test_robustness_refuses_a_limit_below_one(caplog):
    assert main(["robustness", "--model", str(MODEL), "--limit", "0"]) != 0
    assert "--limit must be at least 1" in caplog.text
