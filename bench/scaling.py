"""Served cost against document length and label count, at one fixed concurrency.

Documents are ``k`` consecutive CoNLL-2003 test sentences joined by a line break into one TEXT;
the server splits them into sentence windows itself (a line break always ends a window, and a
CoNLL line that holds two sentences gives two). Every point reads the same pool of sentences,
so a pass over the pool is the same work at every document length. The label sweep sends one
sentence per request with longer option lists (:func:`label_list`): the prompt grows, which is
the cost measured. The point with one sentence per request and the corpus's own label words
belongs to both sweeps and is measured once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.flops import Call, ModelShape, total_ops, window_call
from bench.machine import CpuMonitor, QuietGate
from bench.perf import PerfAnalyzer, PerfLevel
from bench.profiles import Profile
from bench.serverstats import snapshot_delta
from bench.workload import CORPUS, write_json
from instructner.method.labels import get_verbalizer
from instructner.method.types import Sentence

# Label words are taken in this order: the benchmark corpus's own first, so its entities stay
# answerable, then the other corpora's (instructner.method.labels, each in its corpus order).
LABEL_SOURCES: tuple[str, ...] = (CORPUS, "mit_movie", "mit_restaurant", "atis")
SEPARATOR = "\n"
MODEL = "instruction_ner"

logger = logging.getLogger(__name__)


def label_pool() -> list[tuple[str, str]]:
    """Return ``(corpus, word)`` of every label word, duplicates (ignoring case) left out."""
    seen: set[str] = set()
    pool = []
    for corpus in LABEL_SOURCES:
        for word in get_verbalizer(corpus).words:
            key = word.strip().casefold()
            if key not in seen:
                seen.add(key)
                pool.append((corpus, word))
    return pool


def label_list(count: int) -> tuple[str, ...]:
    """Return the first ``count`` label words of :func:`label_pool`.

    Raises:
        ValueError: ``count`` is not positive or larger than the pool.

    """
    pool = label_pool()
    if not 1 <= count <= len(pool):
        raise ValueError(f"label count must be within 1..{len(pool)}, got {count}")
    return tuple(word for _, word in pool[:count])


def describe_labels(count: int) -> str:
    """Say which corpora's label words make up :func:`label_list` of ``count``."""
    label_list(count)  # checks the count
    parts, repeats, seen, remaining = [], [], set[str](), count
    for corpus in LABEL_SOURCES:
        words = get_verbalizer(corpus).words
        used: list[str] = []
        for word in words:
            if remaining == 0:
                break
            key = word.strip().casefold()
            if key in seen:
                repeats.append(f"{corpus}'s {word!r} already listed")
                continue
            seen.add(key)
            used.append(word)
            remaining -= 1
        if not used:
            break
        complete = len(used) + sum(1 for r in repeats if r.startswith(f"{corpus}'s")) == len(words)
        if complete:
            parts.append(f"{corpus}'s {len(used)}")
        else:
            parts.append(f"{corpus}'s first {len(used)} ({used[0]} … {used[-1]})")
    note = f" ({'; '.join(repeats)})" if repeats else ""
    return f"{count}: " + " + ".join(parts) + note


@dataclass(frozen=True)
class Document:
    """One request TEXT: consecutive sentences joined by :data:`SEPARATOR`."""

    text: str
    sentences: int
    words: int


def make_documents(
    sentences: Sequence[Sentence],
    per_document: int,
    separator: str = SEPARATOR,
    max_chars: int | None = None,
) -> list[Document]:
    """Cut ``sentences`` into documents of ``per_document`` consecutive sentences each.

    A remainder shorter than ``per_document`` is left out, so every document has the same
    number of sentences.

    Raises:
        ValueError: ``per_document`` is not positive, there are fewer sentences, or a document
            is over ``max_chars`` (the server would refuse it).

    """
    if per_document < 1:
        raise ValueError(f"a document needs at least one sentence, got {per_document}")
    if len(sentences) < per_document:
        raise ValueError(f"{len(sentences)} sentences cannot make a document of {per_document}")
    documents = []
    for begin in range(0, len(sentences) - per_document + 1, per_document):
        part = sentences[begin : begin + per_document]
        text = separator.join(s.text for s in part)
        if max_chars is not None and len(text) > max_chars:
            raise ValueError(
                f"a document of {per_document} sentences has {len(text)} characters, over the "
                f"server's limit of {max_chars}"
            )
        documents.append(Document(text, per_document, sum(len(s.tokens) for s in part)))
    return documents


def documents_input_data(texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Return perf_analyzer's ``--input-data`` for ``instruction_ner``: one step per text."""
    return {
        "data": [
            {
                "TEXT": [text],
                "TASK": ["ner"],
                "LABELS": {"content": list(labels), "shape": [len(labels)]},
            }
            for text in texts
        ]
    }


def window_ms(base_ms: int, cap_ms: int, requests_wanted: int, pass_s: float, requests: int) -> int:
    """Return a measurement window that holds about ``requests_wanted`` completed requests.

    ``pass_s`` is how long the answer pass over ``requests`` documents took at the same
    concurrency: its time per request is the server's time per request. At least ``base_ms``
    (the profile's window), at most ``cap_ms``, rounded up to 500 ms.
    """
    wanted = requests_wanted * pass_s / max(1, requests) * 1000
    return int(min(cap_ms, max(base_ms, math.ceil(wanted / 500) * 500)))


@dataclass(frozen=True)
class Answers:
    """What the server returned for every document of a point (its own token counts)."""

    windows: tuple[Call, ...]  # (prompt tokens, generated, ended) per window
    windows_per_request: float
    seconds: float  # the answer pass, at the sweep's concurrency


def answers_from_results(results: Sequence[Any], seconds: float) -> Answers:
    """Collect the window token counts of ``ExtractionResult`` messages."""
    windows = tuple(window_call(w) for r in results for w in r.windows)
    return Answers(windows, len(windows) / max(1, len(results)), seconds)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def point_record(
    sentences_per_request: int,
    labels: Sequence[str],
    documents: Sequence[Document],
    answers: Answers,
    level: Mapping[str, Any],
    shape: ModelShape | None,
) -> dict[str, Any]:
    """Return one point's figures: rates per request, sentence and word, and token counts."""
    requests = len(documents)
    words = _mean([d.words for d in documents])
    windows = len(answers.windows)
    prompt = sum(n for n, _, _ in answers.windows)
    generated = sum(g for _, g, _ in answers.windows)
    rate = float(level["throughput"])
    p50, p99, mean = level.get("p50_us"), level.get("p99_us"), level.get("avg_latency_us")
    record: dict[str, Any] = {
        "sentences_per_request": sentences_per_request,
        "label_count": len(labels),
        "requests": requests,
        "words_per_request": words,
        "windows_per_request": answers.windows_per_request,
        "prompt_tokens_per_request": prompt / requests,
        "prompt_tokens_per_window": prompt / max(1, windows),
        "output_tokens_per_window": generated / max(1, windows),
        "output_limit_windows": sum(1 for _, _, ended in answers.windows if not ended),
        "answer_pass_s": answers.seconds,
        "requests_per_s": rate,
        "sentences_per_s": rate * sentences_per_request,
        "words_per_s": rate * words,
        "p50_ms": None if p50 is None else p50 / 1000,
        "p99_ms": None if p99 is None else p99 / 1000,
        "mean_ms": None if mean is None else mean / 1000,  # only an unstable level has it
        "stable": level.get("stable", True),
        "ms_per_sentence": 1000 / (rate * sentences_per_request) if rate else None,
        "p50_ms_per_sentence": None if p50 is None else p50 / 1000 / sentences_per_request,
        "level": dict(level),
    }
    if shape is not None:
        record["gop_per_request"] = total_ops(shape, answers.windows) / requests / 1e9
    return record


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """Return ``(intercept, slope)`` of the least-squares line, or None under two distinct xs."""
    if len(xs) != len(ys) or len(set(xs)) < 2:
        return None
    mx, my = _mean(xs), _mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return my - slope * mx, slope


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _times(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}×"


def _counted(count: int, noun: str) -> str:
    """Return "no length", "one length", "3 lengths"."""
    word = {0: "no", 1: "one"}.get(count, str(count))
    return f"{word} {noun}{'s' if count > 1 else ''}"


def _measured(points: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], str]:
    """Return the points with a served rate, and a note on the ones left out (if any).

    A point without ``ms_per_sentence`` (no request completed: throughput 0) has no cost
    per sentence to compare.
    """
    kept = [p for p in points if p.get("ms_per_sentence") is not None]
    left = len(points) - len(kept)
    note = (
        f" ({left} point{'s' if left > 1 else ''} without a served rate left out)" if left else ""
    )
    return kept, note


def _ordered(
    points: Sequence[Mapping[str, Any]], key: str, noun: str
) -> tuple[list[Mapping[str, Any]], str, int, dict[str, Any] | None]:
    """Return the measured points sorted by ``key``, the note, and the skipped count.

    The last item is the record to return instead when fewer than two points are left.
    """
    measured, note = _measured(points)
    ordered = sorted(measured, key=lambda p: p[key])
    skipped = len(points) - len(measured)
    too_few = None
    if len(ordered) < 2:
        too_few = {
            "text": f"{_counted(len(ordered), noun)} measured: no growth to state{note}",
            "skipped": skipped,
        }
    return ordered, note, skipped, too_few


def doc_length_growth(points: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Say how cost grows with sentences per request: first against last, and a line fit.

    Points without a served rate are left out (and counted in ``skipped``).
    """
    ordered, note, skipped, too_few = _ordered(points, "sentences_per_request", "document length")
    if too_few is not None:
        return too_few
    first, last = ordered[0], ordered[-1]
    k0, k1 = first["sentences_per_request"], last["sentences_per_request"]
    # p50, or the mean latency of a level perf_analyzer could not stabilise (it has no p50)
    latency = [(p["sentences_per_request"], p.get("p50_ms") or p.get("mean_ms")) for p in ordered]
    known = [(k, ms) for k, ms in latency if ms is not None]
    means = sum(1 for p in ordered if p.get("p50_ms") is None and p.get("mean_ms") is not None)
    fit = fit_line([k for k, _ in known], [ms for _, ms in known])
    record: dict[str, Any] = {
        "from_sentences": k0,
        "to_sentences": k1,
        "ms_per_sentence": [first["ms_per_sentence"], last["ms_per_sentence"]],
        "ms_per_sentence_ratio": _ratio(last["ms_per_sentence"], first["ms_per_sentence"]),
        "p50_ms_per_sentence": [first.get("p50_ms_per_sentence"), last.get("p50_ms_per_sentence")],
        "p50_fit_ms": None
        if fit is None
        else {"fixed": fit[0], "per_sentence": fit[1], "points": len(known), "means": means},
        "skipped": skipped,
    }
    text = (
        f"{k0} → {k1} sentences per request: {first['ms_per_sentence']:.1f} → "
        f"{last['ms_per_sentence']:.1f} ms of served throughput per sentence "
        f"(1000 / sentences/s; {_times(record['ms_per_sentence_ratio'])})"
    )
    if first.get("p50_ms_per_sentence") is not None and last.get("p50_ms_per_sentence"):
        text += (
            f"; p50 per sentence {first['p50_ms_per_sentence']:.1f} → "
            f"{last['p50_ms_per_sentence']:.1f} ms"
        )
    if fit is not None:
        text += (
            f"; p50 per request ≈ {fit[0]:.0f} ms + {fit[1]:.1f} ms × sentences "
            f"(least squares over {len(known)} points"
            + (f", {means} of them the mean latency of an unstable level)" if means else ")")
        )
    record["text"] = text + note + "."
    return record


def label_growth(points: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Say how cost grows with the label count: per sentence, per prompt token and in GOP.

    Points without a served rate are left out (and counted in ``skipped``).
    """
    ordered, note, skipped, too_few = _ordered(points, "label_count", "label count")
    if too_few is not None:
        return too_few
    first, last = ordered[0], ordered[-1]
    fit = fit_line(
        [p["prompt_tokens_per_window"] for p in ordered], [p["ms_per_sentence"] for p in ordered]
    )
    record: dict[str, Any] = {
        "from_labels": first["label_count"],
        "to_labels": last["label_count"],
        "ms_per_sentence_ratio": _ratio(last["ms_per_sentence"], first["ms_per_sentence"]),
        "prompt_tokens_ratio": _ratio(
            last["prompt_tokens_per_window"], first["prompt_tokens_per_window"]
        ),
        "gop_ratio": _ratio(last.get("gop_per_request"), first.get("gop_per_request")),
        "ms_per_100_prompt_tokens": None if fit is None else fit[1] * 100,
        "skipped": skipped,
    }
    text = (
        f"{first['label_count']} → {last['label_count']} labels: prompt "
        f"{first['prompt_tokens_per_window']:.0f} → {last['prompt_tokens_per_window']:.0f} "
        f"tokens per window ({_times(record['prompt_tokens_ratio'])}), "
        f"{first['ms_per_sentence']:.1f} → {last['ms_per_sentence']:.1f} ms of served "
        f"throughput per sentence ({_times(record['ms_per_sentence_ratio'])})"
    )
    if record["gop_ratio"] is not None:
        text += f", model operations (GOP) per request {_times(record['gop_ratio'])}"
    if fit is not None:
        text += f"; ≈ {fit[1] * 100:.1f} ms per sentence for every 100 prompt tokens (fit)"
    record["text"] = text + note + "."
    return record


@dataclass(frozen=True)
class Point:
    """One scaling measurement to make: sentences per request and label count."""

    sentences_per_request: int
    label_count: int

    @property
    def tag(self) -> str:
        """File-name tag of the point."""
        return f"_doc{self.sentences_per_request}_labels{self.label_count}"


def plan_points(
    doc_lengths: Sequence[int], label_counts: Sequence[int], base_labels: int
) -> list[Point]:
    """Return the points of both sweeps, the shared one (1 sentence, base labels) once."""
    points = [Point(k, base_labels) for k in doc_lengths]
    points += [Point(1, n) for n in label_counts]
    unique: list[Point] = []
    for point in points:
        if point not in unique:
            unique.append(point)
    return unique


def sweeps(points: Sequence[Mapping[str, Any]], base_labels: int) -> dict[str, list[dict]]:
    """Split point records into the document-length and the label sweep."""
    return {
        "doc_length": [dict(p) for p in points if p["label_count"] == base_labels],
        "labels": [dict(p) for p in points if p["sentences_per_request"] == 1],
    }


def failed_point(point: Point, error: BaseException) -> dict[str, Any]:
    """Return the record of a point that could not be measured: which one, and why."""
    return {
        "sentences_per_request": point.sentences_per_request,
        "label_count": point.label_count,
        "tag": point.tag,
        "error": f"{type(error).__name__}: {error}",
    }


def perf_margin_s(answers: Answers, requests: int, concurrency: int) -> float:
    """Return the time a perf_analyzer run needs beyond its windows, from the answer pass.

    Its start, and the requests still in flight when the last window closes: one request
    takes about ``concurrency`` × the pass's time per request; twice that, plus a minute.
    """
    latency = answers.seconds / max(1, requests) * concurrency
    return 60.0 + 2 * latency


@dataclass(frozen=True)
class _Sweep:
    """What every scaling point is measured with."""

    profile: Profile
    pool: Sequence[Sentence]
    shape: ModelShape | None
    max_text_chars: int
    url: str
    admin: Mapping[str, str]
    analyzer: PerfAnalyzer
    out: Path
    monitor: CpuMonitor
    gate: QuietGate | None

    @property
    def concurrency(self) -> int:
        """The one concurrency of every point."""
        return self.profile.scaling_concurrency


def measure_point(sweep: _Sweep, point: Point) -> dict[str, Any]:
    """Send the point's documents once (answers, timing), then measure them with perf_analyzer."""
    from bench.served import served_results, server_statistics

    profile, concurrency = sweep.profile, sweep.concurrency
    labels = label_list(point.label_count)
    documents = make_documents(
        sweep.pool, point.sentences_per_request, max_chars=sweep.max_text_chars
    )
    texts = [d.text for d in documents]
    data = write_json(
        sweep.out / f"input_scaling{point.tag}.json", documents_input_data(texts, labels)
    )
    phase = f"scaling{point.tag}"
    if sweep.gate:
        sweep.gate.wait(phase)
    started = time.perf_counter()
    answers = answers_from_results(
        served_results(sweep.url, texts, labels, concurrency), time.perf_counter() - started
    )
    settings = replace(
        profile.perf,
        window_ms=window_ms(
            profile.perf.window_ms,
            profile.scaling_window_cap_ms,
            profile.scaling_window_requests,
            answers.seconds,
            len(documents),
        ),
    )
    before = server_statistics(sweep.url, sweep.admin)
    sweep.monitor.start(phase)
    try:
        # an unstable point is measured again with at most the scaling cap as its window
        level: PerfLevel = sweep.analyzer.measure(
            MODEL,
            data,
            concurrency,
            settings,
            tag=point.tag,
            retry_cap_ms=profile.scaling_window_cap_ms,
            margin_s=perf_margin_s(answers, len(documents), concurrency),
        )
    finally:
        load = sweep.monitor.stop(phase)
    deltas = snapshot_delta(before, server_statistics(sweep.url, sweep.admin))
    record = point_record(
        point.sentences_per_request, labels, documents, answers, level.to_dict(), sweep.shape
    )
    engine = deltas.get("engine")
    record["engine_avg_batch"] = engine.avg_batch if engine else None
    record["load"] = load
    return record


def run_scaling(
    profile: Profile,
    pool: Sequence[Sentence],
    shape: ModelShape | None,
    max_text_chars: int,
    url: str,
    admin: Mapping[str, str],
    analyzer: PerfAnalyzer,
    out: Path,
    monitor: CpuMonitor,
    gate: QuietGate | None = None,
    on_point: Callable[[dict[str, Any]], None] = lambda record: None,
) -> dict[str, Any]:
    """Measure every point of both sweeps against the running server; return the record.

    A point that fails is recorded in ``failed`` (:func:`failed_point`) and the sweep goes on;
    ``on_point`` gets every point's record, a failed one with its ``error``.
    """
    sweep = _Sweep(profile, pool, shape, max_text_chars, url, admin, analyzer, out, monitor, gate)
    base = len(get_verbalizer(CORPUS).words)
    records, failed = [], []
    for point in plan_points(profile.doc_lengths, profile.label_counts, base):
        try:
            record = measure_point(sweep, point)
        except Exception as error:  # one point's failure must not lose the others
            logger.exception("scaling point %s failed", point.tag)
            record = failed_point(point, error)
            failed.append(record)
        else:
            records.append(record)
        on_point(record)
    split = sweeps(records, base)
    return {
        "model": MODEL,
        "concurrency": sweep.concurrency,
        "pool_sentences": len(pool),
        "corpus": CORPUS,
        "separator": SEPARATOR,
        "base_labels": base,
        "label_lists": {
            str(n): {"description": describe_labels(n), "words": list(label_list(n))}
            for n in sorted({base, *profile.label_counts})
        },
        "doc_length": split["doc_length"],
        "labels": split["labels"],
        "failed": failed,
        "growth": {
            "doc_length": doc_length_growth(split["doc_length"]),
            "labels": label_growth(split["labels"]),
        },
    }
