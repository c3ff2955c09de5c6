import json
import logging

import pytest
import torch

from instructner.cli import main
from instructner.commands.evaluate import parse_labels
from instructner.method.labels import get_verbalizer
from instructner.modeling import (
    EOS_TOKEN_ID,
    PAD_TOKEN_ID,
    generate,
    load_model,
    load_tokenizer,
    model_shape,
    new_t5_model,
)
from instructner.research.data import make_sentence
from instructner.research.evaluation import score_answers, write_evaluation
from tests.shared_data import DATA_ROOT, MISSING

CONLL = get_verbalizer("conll2003")


def _sentence(text: str, tags: str, source: str = ""):
    return make_sentence(text.split(), tags.split(), source)


JOHN = _sentence("John lives in New York .", "B-PER O O B-LOC I-LOC O", "train.txt:1")
US = _sentence("talks in the U.S. ended", "O O O B-LOC O", "train.txt:9")


# --- scoring of answers -------------------------------------------------------------------


def test_correct_answer_scores_one_and_records_token_spans_and_tags():
    evaluation = score_answers([JOHN], ["John is a person, New York is a location."], CONLL)
    assert (evaluation.scores.precision, evaluation.scores.recall) == (1.0, 1.0)
    (record,) = evaluation.records
    assert record["predicted"] == [
        {
            "text": "John",
            "label": "person",
            "start": 0,
            "end": 4,
            "tag": "PER",
            "token_start": 0,
            "token_end": 1,
        },
        {
            "text": "New York",
            "label": "location",
            "start": 14,
            "end": 22,
            "tag": "LOC",
            "token_start": 3,
            "token_end": 5,
        },
    ]
    assert record["gold"][1] == {
        "text": "New York",
        "label": "location",
        "start": 14,
        "end": 22,
        "tag": "LOC",
    }
    assert record["answer"] == "John is a person, New York is a location."
    assert record["source"] == "train.txt:1"


def test_span_off_token_boundaries_is_a_false_positive_and_listed_as_unaligned():
    # "U.S" ends inside the token "U.S.": no token span, so it cannot match the gold "U.S."
    evaluation = score_answers([US], ["U.S is a location."], CONLL)
    scores = evaluation.scores
    assert (scores.tp, scores.fp, scores.fn) == (0, 1, 1)
    assert evaluation.counts["unaligned_predictions"] == 1
    (predicted,) = evaluation.records[0]["predicted"]
    assert (predicted["text"], predicted["token_start"], predicted["token_end"]) == (
        "U.S",
        None,
        None,
    )


def test_wrong_type_costs_a_false_positive_and_a_false_negative():
    evaluation = score_answers([JOHN], ["John is a location, New York is a location."], CONLL)
    scores = evaluation.scores
    assert (scores.tp, scores.fp, scores.fn) == (1, 1, 1)
    assert scores.per_type["PER"].fn == 1
    assert scores.per_type["LOC"].fp == 1


def test_none_answer_predicts_nothing():
    evaluation = score_answers([JOHN], ["None"], CONLL)
    assert (evaluation.scores.tp, evaluation.scores.fp, evaluation.scores.fn) == (0, 0, 2)
    assert evaluation.records[0]["predicted"] == []


def test_truncated_and_unfinished_indices_are_flagged_and_counted():
    evaluation = score_answers([JOHN, US], ["None", "None"], CONLL, truncated=[1], unfinished=[0])
    assert [r["prompt_truncated"] for r in evaluation.records] == [False, True]
    assert [r["answer_unfinished"] for r in evaluation.records] == [True, False]
    assert evaluation.counts == {
        "sentences": 2,
        "unaligned_predictions": 0,
        "truncated_prompts": 1,
        "unfinished_answers": 1,
    }


def test_answer_count_must_match_sentence_count():
    with pytest.raises(ValueError, match="1 answers for 2 sentences"):
        score_answers([JOHN, US], ["None"], CONLL)


def test_gold_tag_unknown_to_verbalizer_names_the_sentence():
    sentence = _sentence("Paris", "B-CITY", "dev.txt:4")
    with pytest.raises(ValueError, match=r"dev.txt:4: tag 'CITY' is not a label of verbalizer"):
        score_answers([sentence], ["None"], CONLL)


def test_written_metrics_hold_scores_counts_and_extra_fields(tmp_path):
    evaluation = score_answers([JOHN], ["John is a person."], CONLL)
    predictions, metrics = write_evaluation(evaluation, tmp_path / "out", dataset="conll2003")
    written = json.loads(metrics.read_text())
    assert written["dataset"] == "conll2003"
    assert (written["precision"], written["recall"]) == (1.0, 0.5)
    assert written["f1"] == pytest.approx(2 / 3)
    assert written["per_type"]["LOC"]["fn"] == 1
    assert written["sentences"] == 1
    lines = predictions.read_text().splitlines()
    assert [json.loads(line)["answer"] for line in lines] == ["John is a person."]


# --- generation ---------------------------------------------------------------------------


class EchoModel(torch.nn.Module):
    """Answers each prompt with its own first tokens, so outputs show which prompt they got."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.batches = []

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        self.batches.append(input_ids.shape)
        start = torch.full((input_ids.shape[0], 1), PAD_TOKEN_ID, dtype=torch.long)
        return torch.cat([start, input_ids[:, :max_new_tokens]], dim=1)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def test_generation_returns_answers_in_prompt_order_across_sorted_batches(tokenizer):
    prompts = ["a b c d e f g h", "x", "p q r", "m n"]
    model = EchoModel()
    generation = generate(model, tokenizer, prompts, batch_size=2, max_new_tokens=64)
    assert generation.answers == prompts
    assert model.batches[0][1] > model.batches[1][1]  # longest prompts go first
    assert generation.unfinished == []


def test_answers_are_decoded_without_tokenizer_cleanup(tokenizer):
    generation = generate(EchoModel(), tokenizer, ["Smith , Jr . 's"], max_new_tokens=64)
    assert generation.answers == ["Smith , Jr . 's"]


def test_answers_cut_at_max_new_tokens_are_reported_unfinished(tokenizer):
    generation = generate(EchoModel(), tokenizer, ["a b c d e f g h i j", "x"], max_new_tokens=4)
    assert generation.unfinished == [0]


def test_over_long_prompt_raises_with_count_and_first_index(tokenizer):
    prompts = ["short", "one two three four five six seven eight", "also short"]
    with pytest.raises(
        ValueError,
        match=r"1 of 3 prompts exceed max_source_length 5 tokens "
        r"\(first: prompt 1, \d+ tokens\)",
    ):
        generate(EchoModel(), tokenizer, prompts, max_source_length=5)


def test_over_long_prompt_is_cut_and_reported_only_when_allowed(tokenizer):
    prompts = ["short", "one two three four five six seven eight"]
    generation = generate(
        EchoModel(), tokenizer, prompts, max_source_length=5, truncate=True, max_new_tokens=64
    )
    assert generation.truncated == [1]
    assert generation.answers[0] == "short"
    assert len(tokenizer(generation.answers[1])["input_ids"]) <= 5


def test_generation_rejects_non_positive_sizes(tokenizer):
    with pytest.raises(ValueError, match="must be positive"):
        generate(EchoModel(), tokenizer, ["x"], batch_size=0)


def test_random_tiny_t5_generates_a_string_per_prompt(tokenizer):
    model = new_t5_model("tiny", seed=0)
    generation = generate(model, tokenizer, ["Sentence: a b", "Sentence: c"], max_new_tokens=4)
    assert len(generation.answers) == 2
    assert all(isinstance(answer, str) for answer in generation.answers)
    assert model.training  # generation restores the training flag


# --- model building and loading -----------------------------------------------------------


def test_new_model_is_reproducible_by_seed_and_uses_t5_special_ids():
    first, again, other = (new_t5_model("tiny", seed=s) for s in (1, 1, 2))
    weight = "shared.weight"
    assert torch.equal(first.state_dict()[weight], again.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])
    config = first.config
    assert (config.vocab_size, config.decoder_start_token_id, config.eos_token_id) == (
        32128,
        PAD_TOKEN_ID,
        EOS_TOKEN_ID,
    )


def test_model_shape_fills_decoder_layers_and_head_size_from_a_partial_mapping():
    shape = model_shape({"d_model": 64, "d_ff": 128, "num_layers": 2, "num_heads": 4})
    assert shape["num_decoder_layers"] == 2
    assert shape["d_kv"] == 16


def test_unknown_size_preset_lists_the_presets():
    with pytest.raises(ValueError, match="unknown model size 'huge': expected one of tiny"):
        model_shape("huge")


def test_unknown_shape_key_is_rejected():
    with pytest.raises(ValueError, match=r"unknown model shape keys \['layers'\]"):
        model_shape({"d_model": 8, "layers": 2})


def test_missing_tokenizer_dir_fails_without_a_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer in .*: expected tokenizer.json"):
        load_tokenizer(tmp_path / "nothing")


def test_loading_a_dir_without_config_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        load_model(tmp_path)


def test_loading_a_non_t5_checkpoint_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="describes a 'bert' model, expected 't5'"):
        load_model(tmp_path)


# --- evaluate command arguments -----------------------------------------------------------


def test_label_pairs_build_a_verbalizer_and_a_bare_tag_is_its_own_word():
    verbalizer = parse_labels(["PER=person", " LOC = place ", "MISC"])
    assert verbalizer.mapping() == {"PER": "person", "LOC": "place", "MISC": "MISC"}


def test_label_pair_with_empty_word_is_rejected():
    with pytest.raises(ValueError, match="label 'PER=': expected TAG=word"):
        parse_labels(["PER="])


def test_evaluate_on_a_file_without_labels_exits_2_with_a_message(tmp_path, caplog):
    data = tmp_path / "data.txt"
    data.write_text("John B-PER\n")
    with caplog.at_level(logging.ERROR):
        code = main(["evaluate", "--model", str(tmp_path), "--data", str(data)])
    assert code == 2
    assert "--data needs --labels" in caplog.text


def test_evaluate_without_a_dataset_or_file_exits_2(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        code = main(["evaluate", "--model", str(tmp_path)])
    assert code == 2
    assert "give --dataset (a shipped corpus) or --data FILE" in caplog.text


def test_a_stretch_repeated_four_times_in_a_row_is_a_loop_and_three_times_is_not():
    from instructner.modeling import looping_rows

    segment = [11, 12, 13, 14, 5]  # "Paris is a location ,"
    assert looping_rows([[0, *segment * 4]]) == [True]
    assert looping_rows([[0, *segment * 3]]) == [False]
    assert looping_rows([[0, 7, 7, 7, 7]]) == [True]
    assert looping_rows([[0, 1, 2, 3, 4, 5, 6]]) == [False]
    # different entities with the same label are not a loop
    answer = [0] + [21, 12, 13, 14, 5] + [22, 12, 13, 14, 5] + [23, 12, 13, 14, 5] * 2
    assert looping_rows([answer]) == [False]


def test_the_serving_tools_are_subcommands_of_the_one_cli(capsys):
    for name in ("build", "serve", "build-trtllm"):
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: instructner {name}")


def test_evaluate_all_writes_every_corpus_split_and_typing_into_the_model_metrics(tmp_path):
    data_root = DATA_ROOT
    if not data_root.is_dir():
        pytest.skip(MISSING)
    from instructner.cli import main
    from instructner.deploy.build import make_untrained_checkpoint

    model = make_untrained_checkpoint(tmp_path / "model", "tiny")
    argv = ["evaluate-all", "--model", str(model), "--work-dir", str(tmp_path / "eval")]
    argv += ["--splits", "dev", "--limit", "2", "--typing-sentences", "2"]
    assert main([*argv, "--data-root", str(data_root)]) == 0
    metrics = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["dev"]) == {"conll2003", "mit_movie", "mit_restaurant", "atis"}
    assert all(m["sentences"] == 2 and 0 <= m["f1"] <= 1 for m in metrics["dev"].values())
    for corpus in metrics["dev"].values():
        novelty = corpus["recall_by_novelty"]
        assert (
            novelty["seen"]["mentions"] + novelty["unseen"]["mentions"]
            == corpus["tp"] + corpus["fn"]
        )
    assert metrics["typing_test"]["sentences_per_corpus"] == 2
    assert {"accuracy", "gold_entities"} <= set(metrics["typing_test"]["atis"])
