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
