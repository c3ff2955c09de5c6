"""The one word-boundary rule: literal, word-bounded occurrences."""

from instructner.method import parser
from instructner.method.spans import occurrences, on_word_boundaries
from instructner.serving import requests, windows


def test_occurrences_are_literal_and_word_bounded():
    text = "Paris, Parisian C++ (1999) a_b Paris"
    assert occurrences(text, "Paris") == [(0, 5), (31, 36)]
    assert occurrences(text, "C++") == [(16, 19)]
    assert occurrences(text, "(1999)") == [(20, 26)]
    assert occurrences(text, "a") == []  # inside a_b: underscore is a word character
    assert occurrences(text, "") == []


def test_overlapping_occurrences_are_all_found():
    assert occurrences("a a a", "a a") == [(0, 3), (2, 5)]


def test_boundaries_at_the_text_ends_always_hold():
    assert on_word_boundaries("abc", 0, 3)
    assert not on_word_boundaries("abc", 1, 3)
    assert not on_word_boundaries("abc", 0, 2)


def test_validation_windows_and_parser_use_the_same_rule():
    assert requests.entity_occurrences is occurrences
    assert windows.entity_occurrences("Paris is in Parisian France", "Paris") == [(0, 5)]
    assert parser.on_word_boundaries is on_word_boundaries
