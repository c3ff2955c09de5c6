"""Exporting a checkpoint as a shippable model folder: dtype, shards, limits, stale files."""

import json
import logging

import pytest
import torch
from transformers import T5ForConditionalGeneration

from instructner.cli import main
from instructner.modeling import load_model, load_tokenizer, new_t5_model, save_model
from instructner.research.export import TRAINING_CONFIG, check_size_limits, export_checkpoint

TINY = {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2,
        "d_kv": 16}  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    save_model(new_t5_model(TINY, seed=0), load_tokenizer(), run / "best")
    (run / "config.yaml").write_text("output_dir: runs/x\n")
    return run


def test_export_writes_float16_shards_tokenizer_and_the_run_config(run_dir, tmp_path):
    out = tmp_path / "default"
    report = export_checkpoint(run_dir / "best", out)
    assert report.total_bytes == sum(p.stat().st_size for p in out.glob("*.safetensors"))
    stored = T5ForConditionalGeneration.from_pretrained(out, dtype="auto")
    assert stored.dtype == torch.float16
    assert (out / "tokenizer_config.json").is_file() and (out / "spiece.model").is_file()
    assert (out / TRAINING_CONFIG).read_text() == "output_dir: runs/x\n"
    loaded = load_model(out)  # float32 for CPU work, weights equal to the rounded originals
    assert loaded.dtype == torch.float32
    original = load_model(run_dir / "best")
    weight = "shared.weight"
    assert torch.equal(loaded.state_dict()[weight], original.state_dict()[weight].half().float())


def test_export_keeps_the_model_card_and_removes_stale_shards(run_dir, tmp_path):
    out = tmp_path / "default"
    out.mkdir()
    (out / "README.md").write_text("card")
    (out / "model-00007-of-00009.safetensors").write_bytes(b"old")
    export_checkpoint(run_dir / "best", out)
    assert (out / "README.md").read_text() == "card"
    assert not (out / "model-00007-of-00009.safetensors").exists()


def test_export_removes_the_calibration_of_the_replaced_weights(run_dir, tmp_path, caplog):
    out = tmp_path / "default"
    (out / "calibration").mkdir(parents=True)
    (out / "calibration" / "calibration.json").write_text('{"served_method": "minimum"}')
    with caplog.at_level(logging.WARNING):
        export_checkpoint(run_dir / "best", out)
    assert not (out / "calibration").exists()
    assert "measured on the previous weights; run instructner calibrate" in caplog.text


def test_export_splits_weights_into_shards_under_the_limit(tmp_path):
    wide = {**TINY, "d_ff": 1024, "num_layers": 4, "num_decoder_layers": 4}  # ~3.2 MB in fp16
    save_model(new_t5_model(wide, seed=0), load_tokenizer(), tmp_path / "wide")
    out = tmp_path / "sharded"
    report = export_checkpoint(tmp_path / "wide", out, max_shard_bytes=2_500_000)
    assert len(report.shards) >= 2
    assert all(size <= 2_500_000 for size in report.shards.values())
    assert (out / "model.safetensors.index.json").is_file()


def test_export_refuses_weights_over_the_total_limit_naming_the_sizes(run_dir, tmp_path):
    with pytest.raises(ValueError, match=r"weights total \d+ bytes, over the 1000-byte limit"):
        export_checkpoint(run_dir / "best", tmp_path / "big", max_total_bytes=1000)


def test_check_size_limits_names_an_oversized_shard(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x" * 20)
    with pytest.raises(ValueError, match="model.safetensors is 20 bytes, over the 10-byte"):
        check_size_limits(tmp_path, max_shard_bytes=10)
    with pytest.raises(ValueError, match="holds no safetensors weights"):
        check_size_limits(tmp_path / "missing")


def test_export_command_prints_shards_and_exits_2_on_a_missing_config(run_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["export", "--model", str(run_dir / "best"), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["total"] == sum(printed["shards"].values()) > 0
    code = main(["export", "--model", str(run_dir / "best"), "--out", str(out),
                 "--training-config", str(tmp_path / "nope.yaml")])  # fmt: skip
    assert code == 2
