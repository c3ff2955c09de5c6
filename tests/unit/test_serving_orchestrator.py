"""The one orchestration every serving place runs: chunks, cancellation, failures, merging."""

import asyncio
import re

import pytest

from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits
from instructner.serving.orchestrator import (
    BatchRun,
    Documents,
    EngineStep,
    run_batch,
    run_batch_async,
)
from instructner.serving.requests import ScoreOptions, validate_request
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.triton_glue import Cancelled
from tests.harness import GazetteerEngine

LABELS = ("person", "location", "organization")
LIMITS = Limits(max_text_chars=20_000, max_input_tokens=100, max_output_tokens=40)


@pytest.fixture(scope="module")
def tokenizer():
    return PromptTokenizer()


def documents(text, min_score=0.0, scores=True):
    request = validate_request(text, "ner", LABELS, (), LIMITS)
    return Documents([request], [ScoreOptions(scores, min_score)])


def sentences(count):
    return " ".join(f"Sentence {i} names the EU ." for i in range(count))


def entity_texts(outcome):
    (result,) = outcome
    return [e.text for e in result.entities]


def test_run_batch_chunks_the_windows_of_all_requests_shortest_prompt_first(tokenizer):
    engine = GazetteerEngine(tokenizer)
    step = EngineStep(engine, tokenizer, LIMITS)
    batch = [documents(sentences(5)), documents("EU ."), documents(sentences(3))]
    outcomes = run_batch(step, BatchRun(tokenizer, LIMITS, batch, chunk_size=4))
    assert [len(o[0].windows) for o in outcomes] == [5, 1, 3]
    assert entity_texts(outcomes[1]) == ["EU"]
    assert engine.batches == [4, 4, 1]
    prompts = [len(tokenizer.encode(prompt)) for prompt, _ in engine.answers]
    assert prompts == sorted(prompts)


def test_a_request_that_fails_to_read_or_plan_is_answered_alone_and_runs_no_window(tokenizer):
    engine = GazetteerEngine(tokenizer)
    limits = Limits(max_input_tokens=100, max_output_tokens=40, max_windows=2)
    bad_read = RequestError("TEXT", "is empty")
    batch = [bad_read, documents(sentences(3)), documents("EU .")]
    outcomes = run_batch(
        EngineStep(engine, tokenizer, limits), BatchRun(tokenizer, limits, batch, 8)
    )
    assert outcomes[0] is bad_read
    assert isinstance(outcomes[1], RequestError)
    assert "splits into more than 2 windows" in str(outcomes[1])
    assert entity_texts(outcomes[2]) == ["EU"]
    assert engine.batches == [1]


def test_a_failing_chunk_fails_only_the_requests_with_a_window_in_it(tokenizer):
    engine = GazetteerEngine(tokenizer)
    step = EngineStep(engine, tokenizer, LIMITS)
    calls = []

    def second_chunk_fails(jobs):
        calls.append(len(jobs))
        if len(calls) == 2:
            raise RuntimeError("engine down")
        return step(jobs)

    batch = [documents("EU ."), documents(sentences(6))]
    outcomes = run_batch(second_chunk_fails, BatchRun(tokenizer, LIMITS, batch, chunk_size=4))
    assert entity_texts(outcomes[0]) == ["EU"]
    assert isinstance(outcomes[1], RuntimeError) and str(outcomes[1]) == "engine down"
    assert calls == [4, 3]


def test_a_step_answering_the_wrong_number_of_windows_fails_their_requests(tokenizer):
    run = BatchRun(tokenizer, LIMITS, [documents("EU .")], chunk_size=4)
    (outcome,) = run_batch(lambda jobs: [], run)
    assert str(outcome) == "window step returned 0 results for 1"


def test_cancellation_is_asked_once_per_request_and_chunk_and_not_before_the_first(tokenizer):
    engine = GazetteerEngine(tokenizer)
    asked = []

    def is_cancelled(index):
        asked.append(index)
        return index == 0 and len(asked) > 2

    batch = [documents(sentences(12)), documents(sentences(12))]
    outcomes = run_batch(
        EngineStep(engine, tokenizer, LIMITS),
        BatchRun(tokenizer, LIMITS, batch, chunk_size=8),
        is_cancelled,
    )
    assert isinstance(outcomes[0], Cancelled)
    message = re.fullmatch(
        r"request cancelled by the caller after (\d+) of 12 windows; the rest were not run",
        str(outcomes[0]),
    )
    assert message is not None
    ran_of_cancelled = int(message[1])
    assert 8 <= ran_of_cancelled < 12
    assert len(outcomes[1][0].windows) == 12
    # once per live request and chunk, none before the first chunk
    assert sorted(asked[:2]) == [0, 1] and 0 in asked[2:4]
    assert len(asked) <= 2 * (len(engine.batches) - 1)
    assert sum(engine.batches) == ran_of_cancelled + 12


def test_min_score_drops_entities_per_row_after_the_merge(tokenizer):
    engine = GazetteerEngine(tokenizer, confidence={"EU": 0.1})
    text = "Peter Blackburn met the EU in Brussels ."
    batch = [documents(text, min_score=0.5), documents(text)]
    outcomes = run_batch(
        EngineStep(engine, tokenizer, LIMITS), BatchRun(tokenizer, LIMITS, batch, 8)
    )
    assert entity_texts(outcomes[0]) == ["Peter Blackburn", "Brussels"]
    assert entity_texts(outcomes[1]) == ["Peter Blackburn", "EU", "Brussels"]


def test_the_async_driver_gives_the_answers_of_the_sync_one(tokenizer):
    step = EngineStep(GazetteerEngine(tokenizer), tokenizer, LIMITS)

    async def async_step(jobs):
        await asyncio.sleep(0)
        return step(jobs)

    batch = [documents(sentences(3)), documents("Peter Blackburn flew in .")]
    sync = run_batch(step, BatchRun(tokenizer, LIMITS, batch, 2))
    awaited = asyncio.run(run_batch_async(async_step, BatchRun(tokenizer, LIMITS, batch, 2)))
    assert [o[0].SerializeToString() for o in awaited] == [o[0].SerializeToString() for o in sync]


def test_chunk_size_below_one_is_refused(tokenizer):
    with pytest.raises(ValueError, match="chunk_size must be at least 1, got 0"):
        BatchRun(tokenizer, LIMITS, [], 0)


def test_every_window_is_handed_out_exactly_once_in_chunks_of_one(tokenizer):
    limits = Limits(max_text_chars=20_000, max_windows=4096, max_input_tokens=100)
    text = " ".join(["EU ."] * 500)
    batch = [Documents([validate_request(text, "ner", LABELS, (), limits)], [ScoreOptions()])]
    run = BatchRun(tokenizer, limits, batch, chunk_size=1)
    handed = []
    while jobs := run.next_chunk(lambda index: False):
        handed.extend((job.row, job.index) for job in jobs)
    assert sorted(handed) == [(0, n) for n in range(500)]


def test_the_async_driver_starts_the_next_window_as_soon_as_one_finishes(tokenizer):
    step = EngineStep(GazetteerEngine(tokenizer), tokenizer, LIMITS)
    order, running, most = [], [0], [0]

    async def uneven(jobs):
        (job,) = jobs
        running[0] += 1
        most[0] = max(most[0], running[0])
        # the first window is slow: the others must not wait for it
        await asyncio.sleep(0.05 if (job.request, job.index) == (0, 0) else 0)
        running[0] -= 1
        order.append((job.request, job.index))
        return step(jobs)

    batch = [documents(sentences(1)), documents(sentences(6))]
    run = BatchRun(tokenizer, LIMITS, batch, chunk_size=1)
    outcomes = asyncio.run(run_batch_async(uneven, run, in_flight=3))
    assert [len(o[0].windows) for o in outcomes] == [1, 6]
    assert most[0] == 3
    assert order[-1] == (0, 0)  # the slow window finished last; six ran meanwhile


def test_the_async_driver_cancels_its_windows_when_its_caller_is_cancelled(tokenizer):
    started, cancelled = [], []

    async def hanging(jobs):
        started.append(jobs)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(jobs)
            raise

    async def scenario():
        run = BatchRun(tokenizer, LIMITS, [documents(sentences(4))], chunk_size=1)
        task = asyncio.ensure_future(run_batch_async(hanging, run, in_flight=2))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert len(started) == 2 and len(cancelled) == 2


def test_in_flight_below_one_is_refused(tokenizer):
    run = BatchRun(tokenizer, LIMITS, [], 1)
    with pytest.raises(ValueError, match="in_flight must be at least 1, got 0"):
        asyncio.run(run_batch_async(lambda jobs: None, run, in_flight=0))
