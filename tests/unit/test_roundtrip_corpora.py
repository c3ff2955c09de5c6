"""Gold spans -> answer sentence -> parser gives back the gold spans, on every training set.

This is the proof that the answer format plus the parser lose nothing the model could say
correctly: every sentence of the four training sets must round-trip exactly (offsets too).
"""

import pytest

from instructner.method.labels import CORPORA, get_verbalizer
from instructner.method.parser import parse_extract_answer, parse_ner_answer, parse_type_answer
from instructner.method.prompts import extract_answer, ner_answer, type_answer
from instructner.research.data import load_corpus
from tests.shared_data import needs_data

pytestmark = needs_data


def _mismatches(corpus: str, task: str) -> list[str]:
    verbalizer = get_verbalizer(corpus)
    words = list(verbalizer.words)
    failures = []
    for sentence in load_corpus(corpus, "train"):
        gold = sentence.char_spans()
        texts = [e.text for e in gold]
        expected = [(e.start, e.end, verbalizer.word(e.label)) for e in gold]
        pairs = [(e.text, verbalizer.word(e.label)) for e in gold]
        if task == "ner":
            parsed = parse_ner_answer(ner_answer(pairs), sentence.text, words)
        elif task == "type":
            answer = type_answer(pairs)
            parsed = parse_type_answer(answer, sentence.text, texts, words) if gold else []
        else:
            parsed = parse_extract_answer(extract_answer(texts), sentence.text)
            expected = [(s, e, None) for s, e, _ in expected]
        if [(e.start, e.end, e.label) for e in parsed] != expected:
            failures.append(f"{sentence.source}: {sentence.text!r}")
    return failures


@pytest.mark.parametrize("task", ["ner", "extract", "type"])
@pytest.mark.parametrize("corpus", CORPORA)
def test_gold_answer_parses_back_to_gold_spans_on_every_training_sentence(corpus, task):
    failures = _mismatches(corpus, task)
    assert failures == [], f"{len(failures)} sentences do not round-trip, e.g. {failures[:3]}"
