"""Typing accuracy given gold entities, with a model that answers from a script."""

from __future__ import annotations

import torch

from instructner.method.labels import get_verbalizer
from instructner.modeling import PAD_TOKEN_ID, load_tokenizer
from instructner.research.data import make_sentence
from instructner.research.typing_accuracy import evaluate_typing

CONLL = get_verbalizer("conll2003")
TOKENIZER = load_tokenizer()


class ScriptedModel(torch.nn.Module):
    """Answers the typing prompt of a sentence with a fixed answer (looked up by sentence)."""

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.answers = answers
        self.prompts: list[str] = []

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        rows = []
        for ids, mask in zip(input_ids, attention_mask, strict=True):
            prompt = TOKENIZER.decode(
                ids[mask.bool()], skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
            self.prompts.append(prompt)
            sentence = prompt.removeprefix("Sentence: ").split(" Instruction:")[0]
            answer = TOKENIZER(self.answers[sentence])["input_ids"]
            rows.append([PAD_TOKEN_ID, *answer])
        width = max(len(r) for r in rows)
        return torch.tensor([r + [PAD_TOKEN_ID] * (width - len(r)) for r in rows])


def sentence(text: str, tags: str):
    return make_sentence(text.split(), tags.split(), "test:1")


def test_accuracy_counts_gold_entities_typed_with_their_label_at_their_span():
    sentences = [
        sentence("John lives in Paris .", "B-PER O O B-LOC O"),
        sentence("EU rejects it .", "B-ORG O O O"),
        sentence("Nothing here .", "O O O"),  # no entity: no typing prompt
    ]
    model = ScriptedModel(
        {
            "John lives in Paris .": "John is a person, Paris is an organization.",
            "EU rejects it .": "None",
        }
    )
    result = evaluate_typing(model, TOKENIZER, sentences, CONLL)
    assert result["sentences"] == 2 and result["gold_entities"] == 3
    assert result["correct"] == 1 and result["typed_entities"] == 2
    assert result["accuracy"] == 1 / 3
    assert result["per_type"]["PER"] == {"gold": 1, "accuracy": 1.0}
    assert result["per_type"]["LOC"] == {"gold": 1, "accuracy": 0.0}
    assert any("John, Paris" in prompt for prompt in model.prompts)  # gold texts listed
