"""CPU smoke test of training and evaluation with a tiny T5 on a 16-sentence corpus.

The corpus is written by the test (CoNLL-2003 layout under a temporary data root), so it runs
without ../shared. One module-scoped run is shared by the tests: 25 steps, an interruption,
and a resume to 40 steps; a second, uninterrupted run checks that the resume was exact.
"""

import json
import logging
import os
import signal
from pathlib import Path

import pytest
import torch

from instructner.cli import main
from instructner.modeling import load_model
from instructner.research.data import load_corpus
from instructner.research.training import (
    STATE_FILE,
    CorpusConfig,
    Trainer,
    load_config,
    load_corpus_data,
    read_history,
)

SMOKE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"

PEOPLE = ["John", "Mary", "Ahmed", "Li", "Olga", "Pedro", "Sara", "Tom"]
PLACES = ["Paris", "Berlin", "Lagos", "Lima", "Oslo", "Tokyo", "Rome", "Cairo"]
ORGS = ["Reuters", "Siemens", "UNICEF", "Nokia"]


def _conll_sentence(index: int) -> list[tuple[str, str]]:
    person, place, org = PEOPLE[index % 8], PLACES[(index * 3) % 8], ORGS[index % 4]
    if index % 4 == 3:
        return [("It", "O"), ("rained", "O"), ("all", "O"), ("day", "O"), (".", "O")]
    return [
        (person, "B-PER"), ("Smith", "I-PER"), ("of", "O"), (org, "B-ORG"), ("flew", "O"),
        ("to", "O"), (place, "B-LOC"), ("on", "O"), ("Monday", "O"), (".", "O"),
    ]  # fmt: skip


def _write_conll(path: Path, indices: range) -> None:
    lines = ["-DOCSTART- -X- -X- O", ""]
    for index in indices:
        lines += [f"{token} NNP B-NP {tag}" for token, tag in _conll_sentence(index)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ner")
    (root / "conll2003").mkdir()
    _write_conll(root / "conll2003" / "train.txt", range(16))
    _write_conll(root / "conll2003" / "valid.txt", range(16, 20))
    _write_conll(root / "conll2003" / "test.txt", range(20, 24))
    (root / "mit_movie").mkdir()
    movie_lines = []
    for index in range(10):
        movie_lines += ["O\tshow", f"B-ACTOR\t{PEOPLE[index % 8].lower()}", "O\tmovies", ""]
    (root / "mit_movie" / "engtrain.bio").write_text("\n".join(movie_lines))
    fewshot = root / "fewshot" / "huang2020_baselinecode" / "conll2003"
    fewshot.mkdir(parents=True)
    chosen = [_conll_sentence(index) for index in (0, 1, 2)]
    (fewshot / "few_shot_5_0.words").write_text(
        "".join(" ".join(token for token, _ in s) + "\n" for s in chosen)
    )
    (fewshot / "few_shot_5_0.ner").write_text(
        "".join(" ".join(tag for _, tag in s) + "\n" for s in chosen)
    )
    return root


def _config(data_root: Path, output_dir: Path, **overrides):
    values = {"data_root": str(data_root), "output_dir": str(output_dir), **overrides}
    return load_config(SMOKE_CONFIG, values)


@pytest.fixture(scope="module")
def interrupted_run(data_root, tmp_path_factory):
    """Train 25 of 40 steps, stop as an interruption would, then resume to the end."""
    output_dir = tmp_path_factory.mktemp("run") / "interrupted"
    first = Trainer(_config(data_root, output_dir)).train(step_limit=25)
    assert first.step == 25
    resumed = Trainer(_config(data_root, output_dir), resume=True)
    assert resumed.state.step == 25
    final = resumed.train()
    return output_dir, final


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _losses(output_dir: Path) -> list[float]:
    return [entry["loss"] for entry in read_history(output_dir) if "loss" in entry]


def test_training_lowers_the_loss_on_a_tiny_corpus(interrupted_run):
    output_dir, state = interrupted_run
    losses = _losses(output_dir)
    assert len(losses) == 40 == state.step  # one entry per step (log_every 1), none repeated
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 1.0, (first, last)


def test_checkpoints_are_saved_in_safetensors_shards_and_load_back(interrupted_run):
    output_dir, _ = interrupted_run
    for name in ("best", "last"):
        directory = output_dir / name
        assert (directory / "model.safetensors.index.json").is_file()
        assert len(list(directory.glob("model-*-of-*.safetensors"))) > 1
        assert (directory / "tokenizer.json").is_file()
    assert (output_dir / "last" / STATE_FILE).is_file()
    best = json.loads((output_dir / "best" / "best.json").read_text())
    assert best["step"] in (20, 25, 40)
    assert "conll2003" in best["corpora"]
    assert not list(output_dir.glob("*.tmp"))
    model = load_model(output_dir / "last")
    assert model.config.d_model == 32


def test_dev_is_evaluated_every_eval_every_steps_and_where_a_call_stops(interrupted_run):
    output_dir, _ = interrupted_run
    dev = [entry for entry in read_history(output_dir) if "dev" in entry]
    assert [entry["step"] for entry in dev] == [20, 25, 40]
    assert dev[0]["best"] is True
    conll = dev[0]["dev"]["corpora"]["conll2003"]
    assert set(conll) >= {"precision", "recall", "f1", "recall_by_novelty"}
    novelty = conll["recall_by_novelty"]
    assert {"seen", "unseen"} == set(novelty)
    assert novelty["seen"]["mentions"] + novelty["unseen"]["mentions"] > 0


def test_resumed_run_matches_the_uninterrupted_run(interrupted_run, data_root, tmp_path):
    output_dir, _ = interrupted_run
    Trainer(_config(data_root, tmp_path / "straight")).train()
    assert _losses(tmp_path / "straight") == pytest.approx(_losses(output_dir), abs=1e-6)
    resumed = load_model(output_dir / "last").state_dict()
    straight = load_model(tmp_path / "straight" / "last").state_dict()
    assert all(torch.allclose(resumed[key], straight[key], atol=1e-6) for key in straight)


def test_fine_tuning_starts_from_the_checkpoint_weights(interrupted_run, data_root, tmp_path):
    output_dir, _ = interrupted_run
    config = _config(
        data_root, tmp_path / "tuned", init_from=str(output_dir / "last"), model="small",
        max_steps=1, eval_every=0,
    )  # fmt: skip
    trainer = Trainer(config)
    start = load_model(output_dir / "last").state_dict()["shared.weight"]
    assert torch.equal(trainer.model.state_dict()["shared.weight"], start)  # not a "small" init
    assert trainer.train().step == 1


def test_resume_without_a_checkpoint_names_the_missing_state(data_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot resume: .*trainer_state.pt does not"):
        Trainer(_config(data_root, tmp_path / "empty"), resume=True)


def test_fresh_run_refuses_an_output_dir_that_holds_a_run(interrupted_run, data_root):
    output_dir, _ = interrupted_run
    with pytest.raises(ValueError, match="already holds a run; resume it"):
        Trainer(_config(data_root, output_dir))


def test_unknown_config_key_is_rejected_with_the_known_keys(data_root, tmp_path):
    with pytest.raises(ValueError, match=r"unknown config keys \['max_step'\]; known keys:"):
        _config(data_root, tmp_path, max_step=3)


def test_copy_probability_outside_zero_one_is_rejected_before_training(data_root, tmp_path):
    with pytest.raises(ValueError, match=r"copy_probability must be in \[0, 1\], got 1.5"):
        _config(data_root, tmp_path, copy_probability=1.5)


def test_kshot_corpus_without_k_is_rejected(data_root, tmp_path):
    with pytest.raises(ValueError, match="corpus conll2003: train 'kshot' needs a positive k"):
        _config(data_root, tmp_path, corpora=[{"name": "conll2003", "train": "kshot"}])


def test_holdout_dev_slice_is_removed_from_the_training_sentences(data_root):
    spec = CorpusConfig("conll2003", dev="holdout", holdout_fraction=0.25)
    loaded = load_corpus_data(spec, data_root, seed=0)
    full = load_corpus("conll2003", "train", data_root)
    assert (len(loaded.train), len(loaded.dev)) == (12, 4)
    assert sorted(s.source for s in loaded.train + loaded.dev) == sorted(s.source for s in full)


def test_kshot_training_set_is_a_sample_with_every_type(data_root):
    spec = CorpusConfig("conll2003", train="kshot", k=1, dev="none")
    loaded = load_corpus_data(spec, data_root, seed=3)
    assert 1 <= len(loaded.train) < 12
    assert {span.tag for s in loaded.train for span in s.spans} == {"PER", "ORG", "LOC"}
    assert loaded.dev == []


def test_fewshot_training_set_comes_from_the_shipped_file_and_repeat_multiplies_it(data_root):
    spec = CorpusConfig("conll2003", train="fewshot", fewshot=5, fewshot_seed=0, repeat=2)
    loaded = load_corpus_data(spec, data_root, seed=0)
    assert [s.tokens[0] for s in loaded.train] == ["John", "Mary", "Ahmed"] * 2
    assert len(loaded.dev) == 4  # the corpus's dev split, untouched


def test_holdout_dev_slice_leaves_out_sentences_of_the_fewshot_file(data_root):
    spec = CorpusConfig("conll2003", train="fewshot", fewshot=5, fewshot_seed=0, dev="holdout")
    spec.holdout_fraction = 0.5
    loaded = load_corpus_data(spec, data_root, seed=0)
    fewshot_tokens = {s.tokens for s in loaded.train}
    assert loaded.dev
    assert not [s for s in loaded.dev if s.tokens in fewshot_tokens]


def test_corpus_repeat_below_one_is_rejected():
    with pytest.raises(ValueError, match="corpus atis: repeat must be at least 1, got 0"):
        CorpusConfig("atis", repeat=0)


def test_train_command_applies_flag_and_set_overrides(data_root, tmp_path, capsys):
    output_dir = tmp_path / "cli"
    code = main(
        [
            "train", "--config", str(SMOKE_CONFIG), "--data-root", str(data_root),
            "--output-dir", str(output_dir), "--max-steps", "2", "--set", "tasks=[ner]",
            "--set", "eval_every=0",
        ]
    )  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["step"], result["best_f1"]) == (2, None)
    saved = (output_dir / "config.yaml").read_text()
    assert "- ner\n" in saved and "- extract" not in saved
    assert not (output_dir / "best").exists()
    assert (output_dir / "last" / STATE_FILE).is_file()


def test_train_command_stopped_by_sigterm_saves_and_exits_128_plus_the_signal(
    data_root, tmp_path, capsys, monkeypatch
):
    steps = []
    real_step = Trainer._step

    def step_then_signal(self):
        steps.append(1)
        if len(steps) == 3:  # as `kill` or a session's end would, mid-run
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(self)

    monkeypatch.setattr(Trainer, "_step", step_then_signal)
    output_dir = tmp_path / "stopped"
    code = main(
        [
            "train", "--config", str(SMOKE_CONFIG), "--data-root", str(data_root),
            "--output-dir", str(output_dir), "--set", "eval_every=0",
        ]
    )  # fmt: skip
    assert code == 128 + signal.SIGTERM  # a stage script must not go on to the next stage
    assert json.loads(capsys.readouterr().out)["step"] == 3
    assert (output_dir / "last" / STATE_FILE).is_file()


def test_train_command_with_bad_set_item_exits_2(data_root, tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        code = main(["train", "--config", str(SMOKE_CONFIG), "--set", "max_steps"])
    assert code == 2
    assert "--set 'max_steps': expected KEY=VALUE" in caplog.text


def test_evaluate_command_writes_predictions_and_metrics(interrupted_run, data_root, capsys):
    output_dir, _ = interrupted_run
    eval_dir = output_dir / "eval"
    code = main(
        [
            "evaluate", "--model", str(output_dir / "best"), "--dataset", "conll2003",
            "--split", "test", "--data-root", str(data_root), "--batch-size", "2",
            "--max-new-tokens", "8", "--output-dir", str(eval_dir), "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((eval_dir / "metrics.json").read_text())
    assert printed == written
    assert 0.0 <= printed["f1"] <= 1.0
    assert {"precision", "recall", "per_type", "tp", "fp", "fn"} <= set(printed)
    assert (printed["dataset"], printed["split"], printed["sentences"]) == ("conll2003", "test", 4)
    assert printed["tp"] + printed["fn"] == 9  # 3 of the 4 test sentences have 3 mentions
    novelty = printed["recall_by_novelty"]
    assert novelty["seen"]["mentions"] + novelty["unseen"]["mentions"] == 9
    assert novelty["seen"]["found"] + novelty["unseen"]["found"] == printed["tp"]
    records = _read_jsonl(eval_dir / "predictions.jsonl")
    assert len(records) == 4
    assert set(records[0]) >= {"sentence", "gold", "predicted", "answer"}
    assert records[0]["gold"][0]["tag"] == "PER"


def test_evaluate_command_reads_any_bio_file_with_given_labels(interrupted_run, data_root, capsys):
    output_dir, _ = interrupted_run
    code = main(
        [
            "evaluate", "--model", str(output_dir / "last"),
            "--data", str(data_root / "conll2003" / "valid.txt"), "--format", "conll",
            "--labels", "PER=person,ORG=company,LOC=place", "--limit", "2",
            "--max-new-tokens", "4", "--output-dir", str(output_dir / "eval-file"),
        ]
    )  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["labels"] == {"PER": "person", "ORG": "company", "LOC": "place"}
    assert printed["sentences"] == 2
    assert "recall_by_novelty" not in printed  # no training set to compare a file with
    assert (output_dir / "eval-file" / "predictions.jsonl").is_file()


def test_evaluate_dev_of_a_mit_corpus_uses_the_slice_training_held_out(
    interrupted_run, data_root, capsys
):
    output_dir, _ = interrupted_run
    eval_dir = output_dir / "eval-movie"
    code = main(
        [
            "evaluate", "--model", str(output_dir / "last"), "--dataset", "mit_movie",
            "--split", "dev", "--data-root", str(data_root), "--holdout-fraction", "0.2",
            "--holdout-seed", "5", "--max-new-tokens", "4", "--output-dir", str(eval_dir),
        ]
    )  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["holdout_fraction"], printed["holdout_seed"]) == (0.2, 5)
    spec = CorpusConfig("mit_movie", holdout_fraction=0.2)
    held_out = load_corpus_data(spec, data_root, seed=5).dev
    records = _read_jsonl(eval_dir / "predictions.jsonl")
    assert [r["source"] for r in records] == [s.source for s in held_out]
    assert len(records) == 2


def test_default_config_is_valid_multi_corpus_and_multitask():
    config = load_config(SMOKE_CONFIG.with_name("default.yaml"))
    assert [c.name for c in config.corpora] == ["conll2003", "mit_movie", "mit_restaurant", "atis"]
    assert [c.dev for c in config.corpora] == ["dev", "holdout", "holdout", "dev"]
    assert config.tasks == ["ner", "extract", "type"]
    assert config.model == "mini"
