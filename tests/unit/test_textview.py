"""The model's view of a caller's text: folded, punctuation split, offsets mapped back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructner.method.textview import fold_text, identity_view, model_view, raw_text
from tests.unit.test_reliability_linear import grows_linearly


@pytest.mark.parametrize(
    ("text", "view"),
    [
        ("Angela Merkel visited Paris.", "Angela Merkel visited Paris ."),
        ("Jürgen Klopp left Borussia Dortmund.", "Jurgen Klopp left Borussia Dortmund ."),
        ("Łódź, Kraków and São Paulo", "Lodz , Krakow and Sao Paulo"),
        (
            "He said (in U.S. dollars) it's 3.5% of 1,000.",
            "He said ( in U.S. dollars ) it 's 3.5 % of 1,000 .",
        ),
        ("“Sony” 🎮 and Nintendo", '" Sony " and Nintendo'),
        ("don't", "do n't"),
        ("Germany 's rate , it 's n't", "Germany 's rate , it 's n't"),
        (
            "1. Ryan ( Canada ) 24.57\n2. Jean won in 2015.",
            "1. Ryan ( Canada ) 24.57 2. Jean won in 2015 .",
        ),
        ("Tampa, Fla. and then-U.S. envoy", "Tampa , Fla. and then-U.S. envoy"),
        ("Mr. Smith met J. Doe in St. Louis.", "Mr. Smith met J. Doe in St. Louis ."),
        ("Paris\u00a0Hilton\u2009arrived", "Paris Hilton arrived"),
        ("日本 東京", "日本 東京"),
        ("Straße Ærø Œuvre", "Strasse AEro OEuvre"),
    ],
)
def test_model_view_folds_and_splits_as_the_training_corpora_are_written(text, view):
    assert model_view(text).text == view


def test_pre_tokenized_ascii_text_is_its_own_view():
    text = "Peter Blackburn lives in Paris and works for Reuters ."
    assert model_view(text).identity


def test_an_accented_name_maps_back_to_the_callers_characters():
    text = "Jürgen Klopp 👍🏽 visited Paris."
    view = model_view(text)
    start = view.text.index("Jurgen Klopp")
    assert view.to_original(start, start + len("Jurgen Klopp")) == (0, 12)
    start = view.text.index("Paris")
    s, e = view.to_original(start, start + 5)
    assert text[s:e] == "Paris"


def test_a_split_off_period_never_ends_a_mapped_entity():
    text = "Angela Merkel visited Paris."
    view = model_view(text)
    start = view.text.index("Paris .")
    s, e = view.to_original(start, start + len("Paris ."))
    assert text[s:e] == "Paris"


def test_an_abbreviation_keeps_its_period():
    view = model_view("He works for Acme Inc. in the U.S.")
    assert view.text == "He works for Acme Inc. in the U.S."
    start = view.text.index("Acme Inc.")
    s, e = view.to_original(start, start + len("Acme Inc."))
    assert view.original[s:e] == "Acme Inc."


def test_raw_text_turns_the_view_off_and_back_on():
    with raw_text():
        assert model_view("Paris.").text == "Paris."
    assert model_view("Paris.").text == "Paris ."


def test_to_original_refuses_an_empty_or_outside_span():
    view = model_view("Paris.")
    with pytest.raises(ValueError, match="not a non-empty span"):
        view.to_original(3, 3)
    with pytest.raises(ValueError, match="not a non-empty span"):
        view.to_original(0, 99)


def test_fold_text_keeps_spacing():
    assert fold_text("José  Mourinho") == "Jose  Mourinho"


def test_identity_view_maps_each_character_to_itself():
    view = identity_view("abc")
    assert view.to_original(1, 3) == (1, 3)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aZé ü.,'\"()-🎉\u00a0ßłU.S1%’“")), max_size=60))
def test_every_view_span_maps_to_an_original_span_in_order(text):
    view = model_view(text)
    assert len(view.starts) == len(view.text) == len(view.ends)
    assert list(view.starts) == sorted(view.starts)
    for index in range(len(view.text)):
        assert 0 <= view.starts[index] <= view.ends[index] <= len(text)
    for start in range(len(view.text)):
        for end in range(start + 1, min(len(view.text), start + 8) + 1):
            s, e = view.to_original(start, end)
            assert 0 <= s <= e <= len(text)


@pytest.mark.parametrize(
    "unit", ["Paris. ", "x.).", "'''''", "U.S.", "((((", "é🎉", "don't ", "a" * 7 + "."]
)
def test_the_view_is_linear_on_adversarial_repetition(unit):
    grows_linearly(lambda n: lambda: model_view(unit * n), 400)


def test_a_decomposed_accent_stays_with_its_letter_in_the_mapped_entity():
    text = "Jose\u0301 Mourinho left."
    view = model_view(text)
    assert view.text == "Jose Mourinho left ."
    s, e = view.to_original(0, len("Jose Mourinho"))
    assert text[s:e] == "Jose\u0301 Mourinho"
