"""Answers stuck in a loop: greedy decoding that repeats one stretch of tokens never leaves it.

Used by evaluation (transformers stopping criterion) and by both serving engines (CTranslate2's
per-step callback), so a looping answer stops at the same token everywhere instead of running
to the output limit. Torch-free: the serving models import it.
"""

from __future__ import annotations

from collections.abc import Sequence

# An answer that repeats the same stretch of tokens this many times in a row is looping
# (greedy decoding never leaves such a cycle); legitimate repeats of "is a person" differ in
# their entity, and one entity named twice in a row repeats only twice.
LOOP_REPEATS = 4
LOOP_MAX_PERIOD = 32


def ends_in_loop(row: Sequence[int], repeats: int = LOOP_REPEATS) -> bool:
    """Return whether ``row`` ends with a stretch of tokens repeated ``repeats`` times in a row.

    A stretch is 1 to ``LOOP_MAX_PERIOD`` tokens. Called from the engine's per-step callback
    for every generated token, so it must be cheap: a period is compared in full only after
    single-token probes (the last token against its ``repeats - 1`` predecessors one period
    apart) all match, and the probes are plain index comparisons (no generator per period):
    about 32 comparisons for almost every call.
    """
    size = len(row)
    if repeats < 2:
        return size > 0  # any stretch at the end "repeats" once
    last = row[-1] if size else None
    for period in range(1, min(LOOP_MAX_PERIOD, size // repeats) + 1):
        if row[-1 - period] != last:
            continue
        k = 2
        while k < repeats and row[-1 - k * period] == last:
            k += 1
        if k < repeats:
            continue
        tail = row[size - period :]
        if all(row[size - (k + 1) * period : size - k * period] == tail for k in range(1, repeats)):
            return True
    return False


def looping_rows(rows: Sequence[Sequence[int]], repeats: int = LOOP_REPEATS) -> list[bool]:
    """Return :func:`ends_in_loop` of each row of generated ids."""
    return [ends_in_loop(list(row), repeats) for row in rows]
