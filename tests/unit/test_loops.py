"""Loop detection: the fast per-token check agrees with the definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from instructner.method.loops import LOOP_MAX_PERIOD, LOOP_REPEATS, ends_in_loop


def naive(row: list[int], repeats: int = LOOP_REPEATS) -> bool:
    for period in range(1, LOOP_MAX_PERIOD + 1):
        if repeats * period > len(row):
            break
        tail = row[-period:]
        if all(
            row[len(row) - (k + 1) * period : len(row) - k * period] == tail for k in range(repeats)
        ):
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 3), max_size=12),
    st.lists(st.integers(0, 3), min_size=1, max_size=6),
    st.integers(0, 5),
)
def test_the_fast_check_agrees_with_the_definition(prefix, cycle, times):
    row = prefix + cycle * times
    assert ends_in_loop(row) == naive(row)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 2), max_size=40),
    st.lists(st.integers(0, 2), min_size=1, max_size=5),
    st.integers(0, 6),
    st.integers(1, 5),
)
def test_the_fast_check_agrees_with_the_definition_for_any_repeat_count(
    prefix, cycle, times, repeats
):
    row = prefix + cycle * times
    assert ends_in_loop(row, repeats) == naive(row, repeats)


def test_a_period_longer_than_the_limit_is_not_a_loop():
    cycle = list(range(LOOP_MAX_PERIOD + 1))
    assert not ends_in_loop(cycle * LOOP_REPEATS)
    assert ends_in_loop(cycle[:LOOP_MAX_PERIOD] * LOOP_REPEATS)


def test_four_repeats_loop_and_three_do_not():
    assert ends_in_loop([9, *[5, 6, 7] * 4])
    assert not ends_in_loop([9, *[5, 6, 7] * 3])
    assert not ends_in_loop([])
