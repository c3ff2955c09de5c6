"""The ``score`` and ``parse`` subcommands, run through ``instructner.cli.main``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from instructner.cli import main
from tests.shared_data import DATA_ROOT, needs_data

GOLD_CONLL = """-DOCSTART- -X- -X- O

John NNP B-NP B-PER
lives VBZ B-VP O
in IN B-PP O
New NNP B-NP B-LOC
York NNP I-NP I-LOC
. . O O

Acme NNP B-NP B-ORG
hired VBD B-VP O
Mary NNP B-NP B-PER
"""

# John right, New York cut short (FP + FN), Acme retyped (FP + FN), Mary right, "hired" spurious.
PRED_CONLL = """-DOCSTART- -X- -X- O

John NNP B-NP B-PER
lives VBZ B-VP O
in IN B-PP O
New NNP B-NP B-LOC
York NNP I-NP O
. . O O

Acme NNP B-NP B-PER
hired VBD B-VP B-MISC
Mary NNP B-NP B-PER
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_score_prints_micro_and_per_type_scores_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gold = _write(tmp_path / "gold.txt", GOLD_CONLL)
    pred = _write(tmp_path / "pred.txt", PRED_CONLL)
    result = _run_json(
        capsys, ["score", "--gold", str(gold), "--pred", str(pred), "--format", "conll"]
    )
    assert isinstance(result, dict)
    assert (result["tp"], result["fp"], result["fn"]) == (2, 3, 2)
    assert result["precision"] == pytest.approx(2 / 5)
    assert result["recall"] == pytest.approx(2 / 4)
    assert result["f1"] == pytest.approx(4 / 9)
    assert sorted(result["per_type"]) == ["LOC", "MISC", "ORG", "PER"]
    assert result["per_type"]["PER"] == {
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
        "tp": 2,
        "fp": 1,
        "fn": 0,
    }
    assert result["per_type"]["MISC"]["support"] == 0


def test_score_reads_mit_format_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gold = _write(tmp_path / "gold.bio", "B-Cuisine\tthai\nO\tfood\n\nB-Price\tcheap\n")
    pred = _write(tmp_path / "pred.bio", "B-Cuisine\tthai\nO\tfood\n\nO\tcheap\n")
    result = _run_json(
        capsys, ["score", "--gold", str(gold), "--pred", str(pred), "--format", "mit"]
    )
    assert isinstance(result, dict)
    assert (result["precision"], result["recall"], result["f1"]) == (1.0, 0.5, pytest.approx(2 / 3))


def test_score_exits_2_naming_first_sentence_whose_tokens_differ(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gold = _write(tmp_path / "gold.txt", GOLD_CONLL)
    pred = _write(tmp_path / "pred.txt", PRED_CONLL.replace("Mary", "Marie"))
    with caplog.at_level(logging.ERROR):
        code = main(["score", "--gold", str(gold), "--pred", str(pred), "--format", "conll"])
    assert code == 2
    assert "sentence 1 differs" in caplog.text
    assert f"{pred}:10" in caplog.text  # the line where the sentence starts in the prediction
    assert "token 2 is 'Mary' in gold but 'Marie' in predictions" in caplog.text


def test_score_exits_2_when_sentence_counts_differ(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gold = _write(tmp_path / "gold.txt", GOLD_CONLL)
    pred = _write(tmp_path / "pred.txt", PRED_CONLL.split("\n\nAcme")[0] + "\n")
    with caplog.at_level(logging.ERROR):
        code = main(["score", "--gold", str(gold), "--pred", str(pred), "--format", "conll"])
    assert code == 2
    assert "gold has 2 sentences but predictions have 1" in caplog.text


def test_score_exits_2_when_the_prediction_file_is_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gold = _write(tmp_path / "gold.txt", GOLD_CONLL)
    missing = tmp_path / "nowhere.txt"
    with caplog.at_level(logging.ERROR):
        code = main(["score", "--gold", str(gold), "--pred", str(missing), "--format", "conll"])
    assert code == 2
    assert "nowhere.txt" in caplog.text


def test_score_rejects_unknown_format_as_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--gold", "g", "--pred", "p", "--format", "json"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'json'" in capsys.readouterr().err


def test_parse_prints_ner_entities_with_character_offsets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sentence = "John Smith lives in New York ."
    result = _run_json(
        capsys,
        [
            "parse",
            "--sentence",
            sentence,
            "--label",
            "person",
            "--label",
            "location",
            "--answer",
            "John Smith is a person, New York is a location.",
        ],
    )
    assert result == [
        {"text": "John Smith", "label": "person", "start": 0, "end": 10},
        {"text": "New York", "label": "location", "start": 20, "end": 28},
    ]
    assert isinstance(result, list)
    assert all(sentence[e["start"] : e["end"]] == e["text"] for e in result)


def test_parse_keeps_label_word_containing_a_comma_from_one_label_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _run_json(
        capsys,
        [
            "parse",
            "--sentence",
            "pizza near me",
            "--label",
            "food, drink",
            "--answer",
            "pizza is a food, drink.",
        ],
    )
    assert result == [{"text": "pizza", "label": "food, drink", "start": 0, "end": 5}]


def test_parse_extract_gives_entities_with_null_label(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run_json(
        capsys,
        [
            "parse",
            "--task",
            "extract",
            "--sentence",
            "John met Mary",
            "--answer",
            "John, Mary.",
        ],
    )
    assert result == [
        {"text": "John", "label": None, "start": 0, "end": 4},
        {"text": "Mary", "label": None, "start": 9, "end": 13},
    ]


def test_parse_type_types_the_given_entities(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run_json(
        capsys,
        [
            "parse",
            "--task",
            "type",
            "--sentence",
            "John met Mary",
            "--entity",
            "John",
            "--entity",
            "Mary",
            "--label",
            "person",
            "--answer",
            "John is a person, Mary is a person.",
        ],
    )
    assert result == [
        {"text": "John", "label": "person", "start": 0, "end": 4},
        {"text": "Mary", "label": "person", "start": 9, "end": 13},
    ]


def test_parse_prints_empty_list_for_none_answer(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["parse", "--sentence", "hello", "--label", "person", "--answer", "None"]
    assert _run_json(capsys, argv) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--answer", "None"], "--task ner needs at least one --label"),
        (["--task", "type", "--answer", "None", "--entity", "x"], "--task type needs at least"),
        (
            ["--task", "type", "--label", "person", "--answer", "None"],
            "needs at least one --entity",
        ),
        (["--task", "extract", "--label", "person", "--answer", "None"], "takes no --label"),
        (["--label", "person", "--entity", "x", "--answer", "None"], "--entity is only for"),
        (["--label", "", "--answer", "None"], "--label must not be empty"),
    ],
)
def test_parse_exits_2_on_options_the_task_cannot_use(
    argv: list[str], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        code = main(["parse", "--sentence", "x y", *argv])
    assert code == 2
    assert message in caplog.text


def test_parse_requires_an_answer(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["parse", "--sentence", "x", "--label", "person"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --answer" in capsys.readouterr().err


def test_score_reads_words_format_named_by_its_words_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for stem, tags in (("gold", "B-PER O B-LOC"), ("pred", "B-PER O O")):
        _write(tmp_path / f"{stem}.words", "John visits Rome\nhello\n")
        _write(tmp_path / f"{stem}.ner", f"{tags}\nO\n")
    argv = ["score", "--format", "words"]
    argv += ["--gold", str(tmp_path / "gold.words"), "--pred", str(tmp_path / "pred.words")]
    result = _run_json(capsys, argv)
    assert isinstance(result, dict)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 0, 1)


@needs_data
def test_score_gives_perfect_scores_for_conll_test_against_itself_with_auto_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    test_file = str(DATA_ROOT / "conll2003" / "test.txt")
    result = _run_json(capsys, ["score", "--gold", test_file, "--pred", test_file])
    assert isinstance(result, dict)
    assert (result["precision"], result["recall"], result["f1"]) == (1.0, 1.0, 1.0)
    assert (result["tp"], result["fp"], result["fn"]) == (5648, 0, 0)
    assert {name: s["support"] for name, s in result["per_type"].items()} == {
        "LOC": 1668,
        "MISC": 702,
        "ORG": 1661,
        "PER": 1617,
    }
