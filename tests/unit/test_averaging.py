"""Averaging checkpoints: the mean of the weights, and refusals of members that cannot mix."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from instructner.cli import main
from instructner.modeling import load_model, load_tokenizer, new_t5_model, save_model
from instructner.research.averaging import RECORD, average_checkpoints
from instructner.research.export import TRAINING_CONFIG

TINY = {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2,
        "d_kv": 16}  # fmt: skip


def member(directory, seed, shape=TINY, tasks=("ner", "extract", "type")):
    save_model(new_t5_model(shape, seed=seed), load_tokenizer(), directory)
    (directory / TRAINING_CONFIG).write_text(f"tasks: {list(tasks)}\n")
    return directory


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    return [member(root / f"m{seed}", seed) for seed in (0, 1, 2)]


def test_the_average_holds_the_mean_of_every_weight(members, tmp_path):
    out = tmp_path / "soup"
    report = average_checkpoints(members, out, dtype="float32")
    assert report.total_bytes > 0
    averaged = load_model(out).state_dict()
    states = [load_model(m).state_dict() for m in members]
    for name, tensor in averaged.items():
        expected = sum(s[name] for s in states) / len(states)
        torch.testing.assert_close(tensor, expected)
    assert (out / TRAINING_CONFIG).read_text() == (members[0] / TRAINING_CONFIG).read_text()
    record = json.loads((out / RECORD).read_text())
    assert [m["path"] for m in record["members"]] == [str(m) for m in members]
    assert all(len(m["weights_sha256"]) == 64 for m in record["members"])


def test_the_average_is_stored_in_half_precision_by_default(members, tmp_path):
    average_checkpoints(members[:2], tmp_path / "soup")
    from transformers import T5ForConditionalGeneration

    stored = T5ForConditionalGeneration.from_pretrained(tmp_path / "soup", dtype="auto")
    assert stored.dtype == torch.float16


def test_one_checkpoint_is_refused(members, tmp_path):
    with pytest.raises(ValueError, match="averaging needs at least two checkpoints, got 1"):
        average_checkpoints(members[:1], tmp_path / "soup")


def test_another_architecture_is_refused_naming_what_differs(members, tmp_path):
    wider = member(tmp_path / "wide", 0, {**TINY, "d_ff": 128})
    with pytest.raises(ValueError, match=r"wide has another architecture than .*: d_ff"):
        average_checkpoints([members[0], wider], tmp_path / "soup")


def test_another_tokenizer_is_refused(members, tmp_path):
    other = member(tmp_path / "other", 3)
    config = json.loads((other / "tokenizer.json").read_text())
    config["added_tokens"][0]["content"] = "<PAD>"
    (other / "tokenizer.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="another tokenizer than .*: token ids would differ"):
        average_checkpoints([members[0], other], tmp_path / "soup")


def test_other_trained_tasks_are_refused(members, tmp_path):
    ner_only = member(tmp_path / "ner", 4, tasks=("ner",))
    with pytest.raises(ValueError, match="was trained for ner, .* for ner, extract, type"):
        average_checkpoints([members[0], ner_only], tmp_path / "soup")


def test_writing_over_a_member_is_refused(members):
    with pytest.raises(ValueError, match="is one of the checkpoints to average"):
        average_checkpoints(members[:2], members[1])


def test_the_command_prints_the_shards_and_exits_2_on_a_refusal(members, tmp_path, capsys, caplog):
    out = tmp_path / "soup"
    assert main(["average", "--models", str(members[0]), str(members[1]), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)
    with caplog.at_level(logging.ERROR):
        assert main(["average", "--models", str(members[0]), "--out", str(out)]) == 2
    assert "averaging needs at least two checkpoints" in caplog.text


def test_the_calibration_of_the_replaced_weights_is_removed(members, tmp_path, caplog):
    out = tmp_path / "soup"
    (out / "calibration").mkdir(parents=True)
    (out / "calibration" / "calibration.json").write_text('{"served_method": "minimum"}')
    with caplog.at_level(logging.WARNING):
        average_checkpoints(members[:2], out)
    assert not (out / "calibration").exists()
    assert "measured on the previous weights; run instructner calibrate" in caplog.text
