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
