"""The few-shot ablation runner: config checks, cells, resumption, summaries, one real cell."""

import json
from pathlib import Path

import pytest

from instructner.cli import main
from instructner.research.ablation import (
    RESULTS_FILE,
    SUMMARY_MARKDOWN,
    AblationConfig,
    Cell,
    load_ablation_config,
    run_ablation,
    summarize,
    summary_markdown,
)
from tests.shared_data import DATA_ROOT, needs_data

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "model": {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1,
              "num_heads": 2, "d_kv": 16},
    "max_steps": 2, "batch_size": 4, "warmup_steps": 0, "num_threads": 1, "progress": False,
    "log_every": 1, "save_every": 0, "device": "cpu",
}  # fmt: skip


def _config(tmp_path, **values):
    base = {
        "output_dir": str(tmp_path / "ablation"),
        "train": TINY,
        "settings": [
            {"corpus": "mit_movie", "shots": [10, 20]},
            {"corpus": "conll2003", "shots": [5], "draws": [0, 1]},
        ],
    }
    return AblationConfig.from_dict({**base, **values})


def test_cells_cover_every_setting_draw_and_variant_with_distinct_keys(tmp_path):
    cells = _config(tmp_path).cells()
    assert len(cells) == (2 + 2) * 2
    assert len({cell.key for cell in cells}) == len(cells)
    assert cells[0] == Cell("mit_movie", 10, None, "ner", ("ner",))
    assert cells[1].variant == "ner+aux" and cells[1].tasks == ("ner", "extract", "type")
    assert cells[-1].key == "conll2003-5shot-draw1-ner-plus-aux"


def test_cell_train_config_uses_the_shipped_fewshot_file_without_dev(tmp_path):
    config = _config(tmp_path)
    cell = Cell("conll2003", 5, 3, "ner", ("ner",))
    train = config.cell_train_config(cell)
    corpus = train.corpora[0]
    assert (corpus.train, corpus.fewshot, corpus.fewshot_seed, corpus.dev) == (
        "fewshot",
        5,
        3,
        "none",
    )
    assert train.tasks == ["ner"] and train.eval_every == 0
    assert train.output_dir.endswith("runs/conll2003-5shot-draw3-ner")


def test_config_refuses_a_variant_without_the_scored_ner_task(tmp_path):
    with pytest.raises(ValueError, match="variant 'aux' must include the ner task"):
        _config(tmp_path, variants={"aux": ["extract"]})


def test_config_refuses_train_keys_that_each_cell_sets(tmp_path):
    with pytest.raises(ValueError, match="train must not set corpora, tasks"):
        _config(tmp_path, train={**TINY, "tasks": ["ner"], "corpora": []})


def test_config_refuses_unknown_keys_and_corpora(tmp_path):
    with pytest.raises(ValueError, match="unknown ablation config keys: shot"):
        _config(tmp_path, shot=3)
    with pytest.raises(ValueError, match="unknown corpus 'wnut'"):
        _config(tmp_path, settings=[{"corpus": "wnut", "shots": [5]}])


def test_config_refuses_bad_training_keys_before_any_run(tmp_path):
    with pytest.raises(ValueError, match="max_steps must be at least 1"):
        _config(tmp_path, train={**TINY, "max_steps": 0})


class Interrupted(Exception):
    """Stands for a kill in the middle of a cell."""


def _fake_result(cell, f1):
    return {"key": cell.key, "corpus": cell.corpus, "shots": cell.shots, "draw": cell.draw,
            "variant": cell.variant, "precision": f1, "recall": f1, "f1": f1}  # fmt: skip


def test_run_ablation_skips_finished_cells_and_writes_summaries(tmp_path):
    config = _config(tmp_path)
    calls = []
    interrupt_at = [3]

    def fake_run(_config, cell):
        calls.append(cell.key)
        if len(calls) == interrupt_at[0]:
            raise Interrupted  # an interruption after two finished cells
        return _fake_result(cell, 0.5 if cell.variant == "ner" else 0.6)

    with pytest.raises(Interrupted):
        run_ablation(config, run=fake_run)
    out = Path(config.output_dir)
    assert len((out / RESULTS_FILE).read_text().splitlines()) == 2
    calls.clear()
    interrupt_at[0] = 0
    results = run_ablation(config, run=fake_run)
    assert len(calls) == 6 and len(results) == 8
    assert calls[0] == "mit_movie-20shot-ner"
    summary = json.loads((out / "summary.json").read_text())
    conll = [r for r in summary if r["corpus"] == "conll2003" and r["variant"] == "ner+aux"]
    assert conll[0]["draws"] == 2 and conll[0]["f1_mean"] == pytest.approx(0.6)
    assert (
        "| conll2003 | 5 | 2 | 50.0 ± 0.0 | 60.0 ± 0.0 | +10.0 |"
        in (out / SUMMARY_MARKDOWN).read_text()
    )


def test_summary_gives_mean_and_sample_std_over_draws():
    results = [
        {"corpus": "conll2003", "shots": 5, "variant": "ner", "precision": p, "recall": p,
         "f1": p} for p in (0.2, 0.4)
    ]  # fmt: skip
    (row,) = summarize(results)
    assert row["f1_mean"] == pytest.approx(0.3)
    assert row["f1_std"] == pytest.approx(0.1414, abs=1e-4)
    assert "| conll2003 | 5 | 2 | 30.0 ± 14.1 |" in summary_markdown([row])


def test_summary_marks_a_missing_variant_instead_of_dropping_the_line():
    rows = summarize([{"corpus": "atis", "shots": 10, "variant": "ner", "precision": 0.1,
                       "recall": 0.1, "f1": 0.1},
                      {"corpus": "atis", "shots": 20, "variant": "ner+aux", "precision": 0.2,
                       "recall": 0.2, "f1": 0.2}])  # fmt: skip
    text = summary_markdown(rows)
    assert "| atis | 10 | 1 | 10.0 | — | — |" in text
    assert "| atis | 20 | 1 | — | 20.0 | — |" in text


@needs_data
def test_ablate_command_trains_and_scores_real_fewshot_cells(tmp_path, capsys):
    config_path = tmp_path / "ablation.yaml"
    config_path.write_text(
        json.dumps(
            {
                "output_dir": str(tmp_path / "out"),
                "data_root": str(DATA_ROOT),
                "train": TINY,
                "settings": [{"corpus": "conll2003", "shots": [5], "draws": [0]}],
                "test_limit": 3,
                "eval_max_new_tokens": 8,
            }
        )
    )
    assert main(["ablate", "--config", str(config_path)]) == 0
    assert "| conll2003 | 5 | 1 |" in capsys.readouterr().out
    results = [json.loads(line) for line in (tmp_path / "out" / RESULTS_FILE).open()]
    assert [r["variant"] for r in results] == ["ner", "ner+aux"]
    for result in results:
        assert result["steps"] == 2 and result["test_sentences"] == 3
        assert result["train_sentences"] > 0
        assert 0.0 <= result["f1"] <= 1.0
    assert (tmp_path / "out" / "runs" / "conll2003-5shot-draw0-ner" / "last").is_dir()


def test_ablate_command_exits_2_naming_a_bad_config(tmp_path):
    config_path = tmp_path / "ablation.yaml"
    config_path.write_text("settings: []\n")
    assert main(["ablate", "--config", str(config_path)]) == 2


def test_load_ablation_config_applies_overrides(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(json.dumps({"train": TINY, "settings": [{"corpus": "atis", "shots": [10]}]}))
    config = load_ablation_config(path, {"test_limit": 7})
    assert config.test_limit == 7
