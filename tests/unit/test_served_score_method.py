"""A model is served with the score formula its own calibration chose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructner.deploy.build import BuildSettings, EngineVariant, repository_values
from instructner.method.confidence import (
    CALIBRATION_RECORD,
    DEFAULT_SCORE_METHOD,
    parse_score_method,
    served_score_method,
)
from instructner.research.calibration import CalibrationSet, ScoredEntity, served_method, summarize
from instructner.serving.tokenizer import SHIPPED_TOKENIZER_DIR


def calibrated(directory: Path, summary: object) -> Path:
    record = directory / CALIBRATION_RECORD
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(summary) if not isinstance(summary, str) else summary)
    return directory


def scored(*rows: tuple[dict[str, float], bool]) -> list[ScoredEntity]:
    return [ScoredEntity(scores, correct) for scores, correct in rows]


# Three entities, two of them right: the geometric mean says 0.95 for all (over-confident),
# the product says 0.65 (close to the share right), the minimum 0.85.
ENTITIES = scored(
    *[({"geometric_mean": 0.95, "minimum": 0.85, "product": 0.65}, i < 2) for i in range(3)]
)


def test_the_served_method_is_the_one_with_the_lowest_calibration_error():
    assert served_method(ENTITIES) == "product"


def test_without_entities_the_default_method_stays():
    assert served_method([]) == DEFAULT_SCORE_METHOD


def test_summary_records_the_served_method_and_gives_thresholds_in_its_scores():
    summary = summarize([CalibrationSet("conll2003", list(ENTITIES), gold=4, sentences=3)])
    assert summary["served_method"] == "product"
    pooled = summary["all"]
    assert isinstance(pooled, dict)
    # at 0.7 the product (0.65) keeps nothing; the geometric mean (0.95) would keep all three
    at_07 = next(row for row in pooled["thresholds"] if row["threshold"] == 0.7)
    assert at_07["kept"] == 0


def test_a_model_directory_is_served_with_the_method_its_calibration_chose(tmp_path):
    assert served_score_method(calibrated(tmp_path, {"served_method": "minimum"})) == "minimum"


def test_a_model_directory_without_a_calibration_record_gets_the_default(tmp_path):
    assert served_score_method(tmp_path) == DEFAULT_SCORE_METHOD


def test_a_record_from_before_the_served_method_gets_the_default(tmp_path):
    old = {"default_method": "geometric_mean", "bins": 10}
    assert served_score_method(calibrated(tmp_path, old)) == DEFAULT_SCORE_METHOD


def test_a_record_naming_an_unknown_method_is_refused_naming_the_file(tmp_path):
    calibrated(tmp_path, {"served_method": "mean"})
    with pytest.raises(ValueError, match=r"calibration\.json: served_method: unknown score method"):
        served_score_method(tmp_path)


def test_an_unreadable_record_is_refused_naming_the_file(tmp_path):
    calibrated(tmp_path, "{not json")
    with pytest.raises(ValueError, match=r"calibration\.json: not a readable calibration record"):
        served_score_method(tmp_path)


def test_the_score_method_parameter_is_checked():
    assert parse_score_method("product") == "product"
    with pytest.raises(ValueError, match="unknown score method 'Product': expected one of"):
        parse_score_method("Product")


def test_the_build_writes_the_calibrated_method_into_instruction_ner(tmp_path):
    model = calibrated(tmp_path, {"served_method": "product"})
    (model / "tokenizer.json").write_bytes((SHIPPED_TOKENIZER_DIR / "tokenizer.json").read_bytes())
    settings = BuildSettings(
        model_dir=model,
        out_dir=tmp_path / "out",
        engines=(EngineVariant("engine", "ctranslate2", "int8"),),
    )
    models = repository_values(settings, model, tmp_path / "ct2")
    assert models["instruction_ner"][1]["score_method"] == "product"
