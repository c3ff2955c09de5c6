"""The shipped default model: size limits, loading, its card, and its test F1 on four corpora.

``models/default/metrics.json`` holds the numbers the model card reports; the last test runs
the card's own command (``instructner evaluate ... --split test``) on each of the four corpora
and checks that it reproduces the card's F1 within 0.1 points.
"""

import json
from pathlib import Path

import pytest
from transformers import T5ForConditionalGeneration

from instructner.cli import main
from instructner.modeling import checkpoint_tokenizer, load_model
from instructner.research.export import check_size_limits
from instructner.research.training import load_config
from tests.shared_data import DATA_ROOT, needs_data

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "default"
CORPORA = ("conll2003", "mit_movie", "mit_restaurant", "atis")


@pytest.fixture(scope="module")
def metrics():
    return json.loads((MODEL / "metrics.json").read_text(encoding="utf-8"))


def test_shipped_weights_are_half_precision_shards_within_the_size_limits():
    shards = check_size_limits(MODEL, max_shard_bytes=15_000_000, max_total_bytes=60_000_000)
    assert shards and all(name.endswith(".safetensors") for name in shards)
    stored = T5ForConditionalGeneration.from_pretrained(MODEL, dtype="auto")
    assert str(stored.dtype) in ("torch.float16", "torch.bfloat16")


def test_shipped_model_loads_with_transformers_and_its_own_tokenizer():
    model = load_model(MODEL)
    tokenizer = checkpoint_tokenizer(MODEL)
    assert model.config.model_type == "t5"
    assert len(tokenizer) <= model.config.vocab_size
    ids = tokenizer("Sentence: EU rejects German call").input_ids
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Sentence: EU rejects German call"


def test_shipped_training_config_describes_the_shipped_architecture():
    config = load_config(MODEL / "training-config.yaml")
    model = load_model(MODEL)
    assert isinstance(config.model, dict)
    for key in ("d_model", "d_ff", "num_layers", "num_decoder_layers", "num_heads", "d_kv"):
        assert getattr(model.config, key) == config.model[key], key
    assert [c.name for c in config.corpora] == list(CORPORA)


def test_model_card_reports_the_metrics_file_for_every_corpus(metrics):
    card = (MODEL / "README.md").read_text(encoding="utf-8")
    for corpus in CORPORA:
        scores = metrics["test"][corpus]
        row = f"| {corpus} | {100 * scores['precision']:.2f} | {100 * scores['recall']:.2f} | "
        assert row + f"{100 * scores['f1']:.2f} |" in card, corpus
    for heading in ("## Data", "## Architecture", "## Training", "## Results", "## Weaknesses"):
        assert heading in card


@needs_data
@pytest.mark.parametrize("corpus", ["conll2003", "mit_movie", "mit_restaurant", "atis"])
def test_evaluate_reproduces_the_card_test_f1_within_a_tenth_of_a_point(corpus, metrics, tmp_path):
    expected = metrics["test"][corpus]
    argv = metrics["command"].split()[1:] + ["--output-dir", str(tmp_path)]
    assert argv[:3] == ["evaluate", "--model", "models/default"]
    argv[2] = str(MODEL)
    argv[argv.index("--dataset") + 1] = corpus
    assert main(argv + ["--data-root", str(DATA_ROOT)]) == 0
    measured = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert measured["sentences"] == expected["sentences"]
    assert abs(measured["f1"] - expected["f1"]) <= 0.001, (measured["f1"], expected["f1"])
