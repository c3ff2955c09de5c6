import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructner.serving.errors import RequestError
from instructner.serving.requests import ExtractionRequest
from instructner.serving.windows import entity_occurrences, plan_windows, sentence_spans


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def words(text: str, entities: tuple[str, ...]) -> int:
    """A stand-in prompt measure: 10 tokens of instruction plus one per word."""
    return 10 + len(text.split()) + sum(len(e.split()) for e in entities)


def test_sentence_spans_split_at_end_punctuation_before_capitals():
    text = "EU rejects German call . Peter Blackburn said so! Did he? Yes."
    assert sentences(text) == [
        "EU rejects German call .",
        "Peter Blackburn said so!",
        "Did he?",
        "Yes.",
    ]


def test_sentence_spans_keep_abbreviations_and_initials_inside_sentences():
    text = "Mr. Smith met J. Doe in the U.S. Army base. Then he left."
    assert sentences(text) == ["Mr. Smith met J. Doe in the U.S. Army base.", "Then he left."]


def test_sentence_spans_keep_closing_quotes_with_their_sentence():
    text = '"It is over." The talks ended.'
    assert sentences(text) == ['"It is over."', "The talks ended."]


def test_sentence_spans_end_at_line_breaks_and_drop_blank_lines():
    text = "BRUSSELS 1996-08-22\n\n  The European Commission said\non Thursday  "
    assert sentences(text) == ["BRUSSELS 1996-08-22", "The European Commission said", "on Thursday"]


def test_sentence_spans_do_not_split_before_lowercase_or_decimals():
    assert sentences("Prices rose 3.5 percent. costs too") == ["Prices rose 3.5 percent. costs too"]


def test_entity_occurrences_respect_word_boundaries():
    text = "Paris is not Parisian; C++ and (1999) are literal."
    assert entity_occurrences(text, "Paris") == [(0, 5)]
    assert entity_occurrences(text, "C++") == [(23, 26)]
    assert entity_occurrences(text, "(1999)") == [(31, 37)]


def test_plan_windows_gives_one_window_per_sentence_with_offsets():
    text = "EU rejects it .  Brussels agrees .\nPeter Blackburn reports ."
    windows = plan_windows(ExtractionRequest(text, "ner", ("x",)), words, 100)
    assert [(w.start, w.end, w.text) for w in windows] == [
        (0, 15, "EU rejects it ."),
        (17, 34, "Brussels agrees ."),
        (35, 60, "Peter Blackburn reports ."),
    ]
    assert all(text[w.start : w.end] == w.text for w in windows)


def test_plan_windows_cuts_a_long_sentence_between_words_into_the_fewest_windows():
    text = " ".join(f"w{i}" for i in range(25))
    windows = plan_windows(ExtractionRequest(text, "extract"), words, 20)  # 10 words each
    assert [w.text.split() for w in windows] == [
        [f"w{i}" for i in range(0, 10)],
        [f"w{i}" for i in range(10, 20)],
        [f"w{i}" for i in range(20, 25)],
    ]


def test_plan_windows_never_cuts_through_an_entity_to_type():
    text = "a b c d e f g h New York City i j k"
    request = ExtractionRequest(text, "type", ("place",), ("New York City",))
    windows = plan_windows(request, words, 17)  # 7 words with the entity
    assert any("New York City" in w.text for w in windows)
    assert all(w.entities == ("New York City",) for w in windows)


def test_plan_windows_skips_typing_windows_without_given_entities():
    text = "Nothing here . Brussels agrees . Nothing there ."
    request = ExtractionRequest(text, "type", ("place",), ("Brussels",))
    windows = plan_windows(request, words, 100)
    assert [(w.text, w.entities) for w in windows] == [("Brussels agrees .", ("Brussels",))]


def test_plan_windows_keeps_a_sentence_whole_when_an_entity_spans_its_end():
    text = "He joined Acme Inc. Ltd yesterday ."
    request = ExtractionRequest(text, "type", ("org",), ("Acme Inc. Ltd",))
    assert [w.text for w in plan_windows(request, words, 100)] == [text]


def test_plan_windows_rejects_a_word_that_cannot_fit_naming_its_offsets():
    text = "short " + "x" * 50 + " end"
    with pytest.raises(
        RequestError, match=r"^TEXT: characters 6-56 .* over the engine's limit of 11"
    ):
        plan_windows(ExtractionRequest(text, "extract"), lambda t, e: 10 + len(t) // 5, 11)


def test_plan_windows_blames_labels_when_the_options_fill_the_prompt():
    def measure(text, entities):
        return 90 + len(text.split())

    with pytest.raises(
        RequestError, match=r"^LABELS: the prompt's instruction and options alone take 91"
    ):
        plan_windows(ExtractionRequest("a b c", "ner", ("x",)), measure, 90)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(alphabet="ab .!?\nXY'\"", min_size=0, max_size=12), min_size=1, max_size=8
    ).map("".join),
    st.integers(min_value=13, max_value=30),
)
def test_plan_windows_cover_every_word_once_in_order(text, limit):
    if not text.strip():
        return
    windows = plan_windows(ExtractionRequest(text, "extract"), words, limit)
    assert all(text[w.start : w.end] == w.text for w in windows)
    assert all(words(w.text, ()) <= limit for w in windows)
    assert all(a.end <= b.start for a, b in zip(windows, windows[1:], strict=False))
    assert [x for w in windows for x in w.text.split()] == text.split()
