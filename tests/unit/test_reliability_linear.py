"""Linear time on adversarial repetition: planner, occurrence search, sentence split, parser.

The work of the Python code is counted (line events of ``instructner`` code under
``sys.settrace``), not timed, so the checks are exact and do not depend on the machine: the
count for a doubled input must stay within 2.5x (quadratic code gives 4x). The sentence
regex runs in C, so it gets inputs on which the old pattern took 16.7 s (20,000 ``!``) and a
bound a thousand times looser than what the linear pattern needs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructner.method.parser import parse_answer
from instructner.serving.limits import DEFAULT_LIMITS
from instructner.serving.requests import validate_request
from instructner.serving.windows import entity_occurrences, plan_windows, sentence_spans


def line_events(work: Callable[[], Any]) -> int:
    """Count the lines of ``instructner`` code that ``work()`` executes."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if "instructner" not in frame.f_code.co_filename:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(None)
    return count


def grows_linearly(make_work: Callable[[int], Callable[[], Any]], n: int) -> tuple[int, int]:
    small, large = line_events(make_work(n)), line_events(make_work(2 * n))
    assert large <= 2.5 * small, f"{small} line events for n={n}, {large} for 2n"
    return small, large


def _words_measure(window: str, entities: tuple[str, ...]) -> int:
    """A tokenizer stand-in: one token per word, plus the instruction and the entities."""
    return 20 + len(window.split()) + sum(len(e.split()) for e in entities)


def test_planning_a_type_request_with_a_much_repeated_entity_is_linear():
    def work(n: int) -> Callable[[], Any]:
        request = validate_request("a " * n, "type", ["x"], ["a"], DEFAULT_LIMITS)
        return lambda: plan_windows(request, _words_measure, 512, 10_000)

    grows_linearly(work, 2000)


def test_planning_many_short_sentences_is_linear():
    def work(n: int) -> Callable[[], Any]:
        request = validate_request("Paris! " + "A! " * n, "ner", ["location"], (), DEFAULT_LIMITS)
        return lambda: plan_windows(request, _words_measure, 512, 100_000)

    grows_linearly(work, 1500)


def test_planning_one_long_sentence_is_linear():
    def work(n: int) -> Callable[[], Any]:
        request = validate_request("word " * n, "ner", ["location"], (), DEFAULT_LIMITS)
        return lambda: plan_windows(request, _words_measure, 512, 100_000)

    grows_linearly(work, 1900)


def test_occurrence_search_is_linear_in_the_occurrences():
    grows_linearly(lambda n: lambda: entity_occurrences("a " * n, "a"), 3000)


@pytest.mark.parametrize(
    ("task", "answer", "sentence"),
    [
        ("extract", "Paris, ", "Paris "),
        ("ner", "Paris is a location, ", "Paris "),
        ("ner", "a is a ", "a "),
        ("extract", ", ", "a , "),
    ],
)
def test_parsing_a_repetitive_answer_is_linear(task: str, answer: str, sentence: str):
    def work(n: int) -> Callable[[], Any]:
        return lambda: parse_answer(task, answer * n, sentence * (n // 3), ["location"])

    grows_linearly(work, 300)


@pytest.mark.parametrize(
    "text",
    ["!" * 20_000, ". " * 10_000, "!" * 10_000 + " " * 10_000 + "a", ("x. " + " " * 40) * 400],
)
def test_sentence_split_has_no_catastrophic_backtracking(text: str):
    started = time.perf_counter()
    sentence_spans(text)
    assert time.perf_counter() - started < 1.0


@settings(max_examples=60, deadline=None)
@given(
    unit=st.text(alphabet="a.!? \n,AB", min_size=1, max_size=6),
    repeat=st.integers(min_value=1, max_value=400),
)
def test_any_repeated_unit_plans_and_parses_linearly(unit: str, repeat: int):
    text = (unit * repeat)[: DEFAULT_LIMITS.max_text_chars]
    if not text.strip():
        return
    request = validate_request(text, "extract", (), (), DEFAULT_LIMITS)

    def plan(n: int) -> Callable[[], Any]:
        doubled = validate_request((unit * n)[:20_000] or text, "extract", (), (), DEFAULT_LIMITS)
        return lambda: plan_windows(doubled, _words_measure, 512, 100_000)

    plan_windows(request, _words_measure, 512, 100_000)
    # the step from one window to a split sentence costs a fixed ~3,000 events (slack)
    small = line_events(plan(repeat))
    large = line_events(plan(2 * repeat))
    assert large <= 2.5 * small + 5000
    # the answer doubles against one window's text (str.find over the text runs in C)
    small = line_events(lambda: parse_answer("extract", unit * repeat, text))
    large = line_events(lambda: parse_answer("extract", unit * 2 * repeat, text))
    assert large <= 2.5 * small + 200
