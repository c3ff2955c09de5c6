"""instructner adapt: the user's file formats, label words, the training plan, a real run."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from instructner.method.model_info import describe
from instructner.research.adapt import (
    ADAPTED,
    adapt,
    parse_labels,
    plan_for,
    read_training_file,
)
from instructner.research.data import DataFormatError
from instructner.research.training import CorpusConfig, TrainConfig, Trainer, TrainState

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "default"
DRUGS = REPO / "tests" / "fixtures" / "adapt" / "drugs.jsonl"


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_character_spans_become_word_spans_with_accents_and_punctuation(tmp_path):
    text = "Dr. Müller prescribed 20 mg of ibuprofen, twice."
    record = {
        "text": text,
        "entities": [
            {"start": 4, "end": 10, "label": "PERSON"},
            {"start": 22, "end": 27, "label": "DOSE"},
            {"start": 31, "end": 40, "label": "DRUG"},
        ],
    }
    (sentence,) = read_training_file(write(tmp_path, "a.jsonl", [json.dumps(record)]))
    spans = [(" ".join(sentence.tokens[s.start : s.end]), s.tag) for s in sentence.spans]
    assert spans == [("Müller", "PERSON"), ("20 mg", "DOSE"), ("ibuprofen", "DRUG")]
    assert sentence.tokens[-4:] == ("ibuprofen", ",", "twice", ".")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "a.jsonl:2: not JSON"),
        ('{"entities": []}', "a.jsonl:2: 'text' must be a non-empty string"),
        ('{"text": "x", "entities": {}}', "a.jsonl:2: 'entities' must be a list"),
        (
            '{"text": "ibuprofen 20 mg", "entities": [{"start": 2, "end": 9, "label": "DRUG"}]}',
            "a.jsonl:2: entities[0]: 'uprofen' (2-9) does not begin and end on word boundaries",
        ),
        (
            '{"text": "ibuprofen", "entities": [{"start": 0, "end": 99, "label": "DRUG"}]}',
            "a.jsonl:2: entities[0]: start and end must be integers with 0 <= start < end <= 9",
        ),
        (
            '{"text": "ibuprofen", "entities": [{"start": 0, "end": 9, "label": "A DRUG"}]}',
            "a.jsonl:2: entities[0]: label must be a non-empty word without spaces",
        ),
        (
            '{"text": "a b", "entities": [{"start": 0, "end": 3, "label": "X"},'
            ' {"start": 2, "end": 3, "label": "Y"}]}',
            "a.jsonl:2: entities[1]: 'b' overlaps another entity",
        ),
    ],
)
def test_a_malformed_jsonl_line_is_refused_naming_file_line_and_problem(tmp_path, line, message):
    good = json.dumps({"text": "aspirin .", "entities": [{"start": 0, "end": 7, "label": "DRUG"}]})
    path = write(tmp_path, "a.jsonl", [good, line])
    with pytest.raises(DataFormatError, match=re.escape(message)):
        read_training_file(path)


def test_bio_columns_are_read_as_the_shipped_corpora_are(tmp_path):
    path = write(tmp_path, "a.txt", ["Take O", "aspirin B-DRUG", "daily O", "", "Stop O", "it O"])
    sentences = read_training_file(path)
    assert [s.tokens for s in sentences] == [("Take", "aspirin", "daily"), ("Stop", "it")]
    assert [(s.tag, s.start, s.end) for s in sentences[0].spans] == [("DRUG", 1, 2)]


def test_labels_name_every_type_of_the_file_as_pairs_or_plain_words():
    found = Counter({"DRUG": 3, "DOSE": 1})
    verbalizer = parse_labels("DRUG=drug, DOSE=dosage", found)
    assert (verbalizer.corpus, verbalizer.word("DRUG"), verbalizer.word("DOSE")) == (
        ADAPTED,
        "drug",
        "dosage",
    )
    assert parse_labels("DRUG,DOSE", found).word("DOSE") == "DOSE"
    with pytest.raises(ValueError, match="names no word for the file's types DOSE"):
        parse_labels("DRUG=drug", found)


@pytest.mark.parametrize(
    ("sentences", "tasks", "steps", "batch"),
    [
        (5, 3, 90, 5),
        (2, 1, 60, 2),
        (24, 3, 135, 16),
        (50, 1, 94, 16),
        (200, 3, 563, 16),
        (5000, 3, 3000, 16),
    ],
)
def test_the_plan_follows_the_data_size(sentences, tasks, steps, batch):
    plan = plan_for(sentences, tasks, held_out=True)
    assert (plan.steps, plan.batch_size) == (steps, batch)
    assert plan.warmup_steps == steps // 10 and plan.eval_every == max(10, steps // 10)
    assert plan_for(sentences, tasks, held_out=False).eval_every == 0


def test_adapting_the_shipped_model_writes_a_servable_folder_with_its_card(tmp_path):
    out = tmp_path / "adapted"
    report = adapt(
        SHIPPED, DRUGS, "DRUG=drug,DOSE=dosage", out, replay=False, steps=12, progress=False
    )
    assert (report.sentences, report.held_out) == (24, 6)
    assert report.types == {
        "DRUG": {"word": "drug", "mentions": 38},
        "DOSE": {"word": "dosage", "mentions": 22},
    }
    assert report.tasks == ["ner", "extract", "type"] and report.replay == []
    for name in ("config.json", "tokenizer.json", "ADAPT.md", "adapt.json", "ctranslate2"):
        assert (out / name).exists(), name
    card = (out / "ADAPT.md").read_text(encoding="utf-8")
    assert (
        "DRUG as 'drug' (38 mentions)" in card
        and "replay of the base model's training data: none" in card
    )
    record = yaml.safe_load((out / "training-config.yaml").read_text(encoding="utf-8"))
    assert record["adapted"]["labels"] == {"DRUG": "drug", "DOSE": "dosage"}
    info = describe(out)
    assert info["label_words"]["adapted"] == ["drug", "dosage"]
    assert info["tasks"] == ["ner", "extract", "type"]


def test_ner_only_adaptation_trains_one_task(tmp_path):
    report = adapt(
        SHIPPED, DRUGS, "DRUG=drug,DOSE=dosage", tmp_path / "o", auxiliary=False,
        replay=False, steps=4, progress=False,
    )  # fmt: skip
    assert report.tasks == ["ner"]


def test_an_explicit_learning_rate_replaces_the_rules_and_ties_keep_the_later_step(tmp_path):
    out = tmp_path / "o"
    report = adapt(
        SHIPPED, DRUGS, "DRUG=drug,DOSE=dosage", out, auxiliary=False, replay=False,
        steps=4, learning_rate=1e-3, progress=False,
    )  # fmt: skip
    assert report.plan["learning_rate"] == 1e-3
    record = yaml.safe_load((out / "training-config.yaml").read_text(encoding="utf-8"))
    assert record["learning_rate"] == 1e-3 and record["best_on_tie"] == "last"


class _Evaluations:
    """Stands in for a Trainer: dev F1s in turn, the checkpoints it would save."""

    def __init__(self, f1s, best_on_tie):
        self.f1s = list(f1s)
        self.config = TrainConfig(output_dir="unused", best_on_tie=best_on_tie)
        self.state = TrainState()
        self.saved, self.best_dir, self._evaluated_step = [], "best", 0

    def _has_dev(self):
        return True

    def evaluate_dev(self):
        self.state.step += 10
        return {"f1": self.f1s.pop(0), "corpora": {}}

    def _save_checkpoint(self, directory, extra):
        self.saved.append(self.state.step)

    def _record(self, row):
        pass


@pytest.mark.parametrize(("best_on_tie", "kept"), [("first", [10, 30]), ("last", [10, 20, 30, 40])])
def test_a_dev_f1_equal_to_the_best_keeps_the_step_the_setting_names(best_on_tie, kept):
    run = _Evaluations([0.0, 0.0, 0.5, 0.5], best_on_tie)
    for _ in range(4):
        Trainer.evaluate_and_keep_best(run)
    assert run.saved == kept
    assert run.state.best_step == kept[-1]


def test_an_unknown_tie_rule_is_refused():
    with pytest.raises(ValueError, match="best_on_tie must be 'first' or 'last', got 'middle'"):
        TrainConfig(
            output_dir="unused", corpora=[CorpusConfig(name="atis")], best_on_tie="middle"
        ).validate()
