"""Client calls against a fake tritonclient: retries, batches, readiness, closing, async."""

import asyncio
import threading

import numpy as np
import pytest
from instructner_client import (
    AsyncInstructNERClient,
    DeadlineExceededError,
    Entity,
    InstructNERClient,
    InstructNERError,
    InvalidInputError,
    ModelNotReadyError,
    RetryPolicy,
    ServerUnavailableError,
)
from instructner_client._proto import ExtractionResult
from tritonclient.utils import InferenceServerException

FIRST_WORD_SCORE = 0.75
NO_WAIT = RetryPolicy(max_attempts=3, initial_backoff=0.0, jitter=0.0)


def unavailable() -> InferenceServerException:
    return InferenceServerException(
        msg="failed to connect to all addresses", status="StatusCode.UNAVAILABLE"
    )


class FakeResult:
    def __init__(self, message: ExtractionResult) -> None:
        self._raw = message.SerializeToString()

    def as_numpy(self, name: str):
        return np.array([[self._raw]], dtype=np.object_) if name == "RESULT" else None


def first_word_result(inputs) -> FakeResult:
    """Answer like a model that finds the first word of the text as an entity."""
    values = {tensor.name(): tensor for tensor in inputs}
    text = _decoded(values["TEXT"])
    labels = _decoded_all(values["LABELS"]) if "LABELS" in values else []
    word = text.split()[0]
    message = ExtractionResult(
        task=_decoded(values["TASK"]),
        generated_text=f"{word} is a {labels[0]}." if labels else f"{word}.",
    )
    minimum = (
        float(np.frombuffer(values["MIN_SCORE"]._get_content(), dtype=np.float32)[0])
        if "MIN_SCORE" in values
        else 0.0
    )
    if FIRST_WORD_SCORE >= minimum:  # the server drops entities scored below MIN_SCORE
        entity = message.entities.add()
        entity.text, entity.start, entity.end = word, 0, len(word)
        entity.score = FIRST_WORD_SCORE
        if labels:
            entity.label = labels[0]
    return FakeResult(message)


def _decoded_all(tensor) -> list[str]:
    raw, items, pos = tensor._get_content(), [], 0
    while pos < len(raw):
        size = int.from_bytes(raw[pos : pos + 4], "little")
        items.append(raw[pos + 4 : pos + 4 + size].decode())
        pos += 4 + size
    return items


def _spans(tensor) -> list[tuple[int, int]]:
    values = np.frombuffer(tensor._get_content(), dtype=np.int64).reshape(-1, 2)
    return [(int(s), int(e)) for s, e in values]


def _decoded(tensor) -> str:
    return _decoded_all(tensor)[0]


class FakeTriton:
    """Stands in for tritonclient's sync InferenceServerClient; scripted failures first."""

    def __init__(self, failures=(), ready=True):
        self.failures = list(failures)
        self.calls = []
        self.ready = ready
        self.closed = False
        self.lock = threading.Lock()

    def infer(
        self, model_name, inputs, model_version="", outputs=None, client_timeout=None, headers=None
    ):
        with self.lock:
            self.calls.append(
                {
                    "model": model_name,
                    "version": model_version,
                    "timeout": client_timeout,
                    "headers": headers,
                    "text": _decoded(inputs[0]),
                    "ENTITIES": next(
                        (_decoded_all(t) for t in inputs if t.name() == "ENTITIES"), None
                    ),
                    "ENTITY_SPANS": next(
                        (_spans(t) for t in inputs if t.name() == "ENTITY_SPANS"), None
                    ),
                }
            )
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        return first_word_result(inputs)

    def is_model_ready(self, model_name, model_version="", headers=None, client_timeout=None):
        if isinstance(self.ready, Exception):
            raise self.ready
        return self.ready

    def close(self):
        self.closed = True


def client_with(fake: FakeTriton, **kwargs) -> InstructNERClient:
    client = InstructNERClient("localhost:1", retry=kwargs.pop("retry", NO_WAIT), **kwargs)
    client._triton.close()
    client._triton = fake
    return client


def test_ner_returns_entities_and_sends_model_version_timeout_and_metadata():
    fake = FakeTriton()
    with client_with(
        fake, model_version="3", timeout=5.0, metadata={"authorization": "Bearer t"}
    ) as client:
        entities = client.ner("Paris is nice", ["location"])
    assert entities == [Entity("Paris", "location", 0, 5, 0.75)]
    assert fake.calls[0]["model"] == "instruction_ner"
    assert fake.calls[0]["version"] == "3"
    assert 0 < fake.calls[0]["timeout"] <= 5.0
    assert fake.calls[0]["headers"] == {"authorization": "Bearer t"}
    assert fake.closed


def test_call_timeout_overrides_the_client_default():
    fake = FakeTriton()
    with client_with(fake, timeout=100.0) as client:
        client.extract("Paris is nice", timeout=0.5)
    assert fake.calls[0]["timeout"] <= 0.5


def test_unavailable_server_is_retried_until_it_answers():
    fake = FakeTriton(failures=[unavailable(), unavailable()])
    with client_with(fake) as client:
        assert client.extract("Paris is nice") == [Entity("Paris", None, 0, 5, 0.75)]
    assert len(fake.calls) == 3


def test_unavailable_server_raises_after_the_bounded_attempts():
    fake = FakeTriton(failures=[unavailable()] * 10)
    with client_with(fake) as client, pytest.raises(ServerUnavailableError) as caught:
        client.extract("Paris is nice")
    assert len(fake.calls) == 3
    assert str(caught.value) == (
        "model 'instruction_ner' at localhost:1 is unavailable: failed to connect to all "
        "addresses (gave up after 3 attempts)"
    )
    assert caught.value.code == "UNAVAILABLE"


def test_no_retry_when_the_backoff_would_pass_the_deadline():
    fake = FakeTriton(failures=[unavailable()] * 10)
    slow_retry = RetryPolicy(max_attempts=5, initial_backoff=60.0, jitter=0.0)
    with client_with(fake, retry=slow_retry, timeout=1.0) as client:
        with pytest.raises(
            ServerUnavailableError, match="is unavailable: failed to connect to all addresses$"
        ):
            client.extract("Paris is nice")
    assert len(fake.calls) == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("StatusCode.INVALID_ARGUMENT", InvalidInputError),
        ("StatusCode.DEADLINE_EXCEEDED", DeadlineExceededError),
        ("StatusCode.NOT_FOUND", ModelNotReadyError),
        ("StatusCode.INTERNAL", InstructNERError),
    ],
)
def test_errors_other_than_unavailable_are_raised_without_retry(status, expected):
    fake = FakeTriton(failures=[InferenceServerException(msg="nope", status=status)])
    with client_with(fake) as client, pytest.raises(expected, match="nope"):
        client.ner("Paris is nice", ["location"])
    assert len(fake.calls) == 1


def test_a_deadline_error_says_the_calls_timeout():
    failure = InferenceServerException(
        msg="Deadline Exceeded", status="StatusCode.DEADLINE_EXCEEDED"
    )
    fake = FakeTriton(failures=[failure])
    with client_with(fake) as client, pytest.raises(DeadlineExceededError) as info:
        client.ner("Paris is nice", ["location"], timeout=2.5)
    assert str(info.value).endswith("Deadline Exceeded (the call's timeout is 2.5 s)")


def test_an_http_port_gets_a_hint_to_use_the_grpc_port():
    failure = InferenceServerException(msg="Socket closed", status="StatusCode.UNAVAILABLE")
    fake = FakeTriton(failures=[failure] * 3)
    with client_with(fake) as client, pytest.raises(ServerUnavailableError) as info:
        client.ner("Paris is nice", ["location"])
    assert "is this Triton's HTTP port? The client speaks gRPC" in str(info.value)


def test_invalid_input_is_raised_before_anything_is_sent():
    fake = FakeTriton()
    with (
        client_with(fake) as client,
        pytest.raises(InvalidInputError, match="labels must not be empty"),
    ):
        client.ner("Paris is nice", [])
    assert fake.calls == []


def test_closed_client_refuses_calls():
    client = client_with(FakeTriton())
    client.close()
    with pytest.raises(
        InstructNERError, match="the client of model 'instruction_ner' at localhost:1 is closed"
    ):
        client.extract("Paris is nice")


def test_is_ready_reports_the_model_state():
    with client_with(FakeTriton(ready=True)) as client:
        assert client.is_ready() is True
    with client_with(FakeTriton(ready=False)) as client:
        assert client.is_ready() is False


@pytest.mark.parametrize(
    "status", ["StatusCode.UNAVAILABLE", "StatusCode.NOT_FOUND", "StatusCode.DEADLINE_EXCEEDED"]
)
def test_is_ready_answers_false_when_server_or_model_cannot_answer(status):
    fake = FakeTriton(ready=InferenceServerException(msg="x", status=status))
    with client_with(fake) as client:
        assert client.is_ready() is False


def test_is_ready_raises_on_unexpected_failure():
    fake = FakeTriton(
        ready=InferenceServerException(msg="denied", status="StatusCode.PERMISSION_DENIED")
    )
    with (
        client_with(fake) as client,
        pytest.raises(InstructNERError, match="PERMISSION_DENIED: denied"),
    ):
        client.is_ready()


class OutOfOrderTriton(FakeTriton):
    """Holds the first text's answer until the last text has been answered."""

    def __init__(self, last_text):
        super().__init__()
        self.last_text = last_text
        self.last_done = threading.Event()
        self.answered = []

    def infer(self, model_name, inputs, **kwargs):
        text = _decoded(inputs[0])
        if text.startswith("first"):
            assert self.last_done.wait(timeout=30), "the last text was never sent concurrently"
        result = super().infer(model_name, inputs, **kwargs)
        with self.lock:
            self.answered.append(text)
        if text == self.last_text:
            self.last_done.set()
        return result


def test_ner_batch_keeps_input_order_when_answers_arrive_out_of_order():
    texts = ["first one", "second two", "third three", "last four"]
    fake = OutOfOrderTriton(last_text="last four")
    done = []
    with client_with(fake, max_concurrency=4) as client:
        results = client.ner_batch(texts, ["thing"], on_done=done.append)
    assert [r[0].text for r in results] == ["first", "second", "third", "last"]
    assert sorted(done) == [0, 1, 2, 3]
    assert fake.answered.index("first one") > fake.answered.index("last four")


def test_ner_batch_raises_the_failure_by_default():
    fake = FakeTriton(
        failures=[InferenceServerException(msg="bad text", status="StatusCode.INVALID_ARGUMENT")]
    )
    with (
        client_with(fake, max_concurrency=1) as client,
        pytest.raises(InvalidInputError, match="bad text"),
    ):
        client.ner_batch(["a b", "c d"], ["thing"])


def test_batch_with_return_exceptions_puts_each_error_in_its_slot():
    fake = FakeTriton(
        failures=[None, InferenceServerException(msg="boom", status="StatusCode.INTERNAL")]
    )
    with client_with(fake, max_concurrency=1) as client:
        results = client.extract_batch(["a b", "c d", " ", "e f"], return_exceptions=True)
    assert results[0] == [Entity("a", None, 0, 1, 0.75)]
    assert isinstance(results[1], InstructNERError) and "INTERNAL: boom" in str(results[1])
    assert isinstance(results[2], InvalidInputError)
    assert str(results[2]) == "texts[2]: text must not be empty or only whitespace"
    assert results[3] == [Entity("e", None, 0, 1, 0.75)]
    assert len(fake.calls) == 3  # the blank text was never sent


def test_batch_with_an_invalid_text_sends_nothing_by_default():
    fake = FakeTriton()
    with (
        client_with(fake) as client,
        pytest.raises(InvalidInputError, match=r"texts\[1\]: text must not be empty"),
    ):
        client.ner_batch(["a b", ""], ["thing"])
    assert fake.calls == []


def test_type_batch_sends_each_text_with_its_own_entities():
    fake = FakeTriton()
    with client_with(fake) as client:
        results = client.type_batch(["Ann met Bob", "Cy left"], [["Ann"], ["Cy"]], ["person"])
    assert results == [[Entity("Ann", "person", 0, 3, 0.75)], [Entity("Cy", "person", 0, 2, 0.75)]]


# The asyncio client, against a fake of tritonclient.grpc.aio.


class FakeAioTriton:
    def __init__(self, failures=()):
        self.sync = FakeTriton(failures)

    async def infer(self, model_name, inputs, **kwargs):
        await asyncio.sleep(0)
        return self.sync.infer(model_name, inputs, **kwargs)

    async def is_model_ready(self, model_name, model_version="", headers=None, client_timeout=None):
        return self.sync.is_model_ready(model_name, model_version, headers, client_timeout)

    async def close(self):
        self.sync.closed = True


def async_client_with(fake: FakeAioTriton, **kwargs) -> AsyncInstructNERClient:
    client = AsyncInstructNERClient("localhost:1", retry=NO_WAIT, **kwargs)
    client._triton = fake
    return client


def test_async_client_mirrors_the_sync_calls():
    fake = FakeAioTriton()

    async def scenario():
        async with async_client_with(fake) as client:
            return (
                await client.ner("Paris is nice", ["location"]),
                await client.extract("Paris is nice"),
                await client.type("Paris is nice", ["Paris"], ["location"]),
                await client.ner_batch(["a b", "c d", "e f"], ["thing"]),
                await client.is_ready(),
            )

    ner, extract, typed, batch, ready = asyncio.run(scenario())
    assert ner == [Entity("Paris", "location", 0, 5, 0.75)]
    assert extract == [Entity("Paris", None, 0, 5, 0.75)]
    assert typed == [Entity("Paris", "location", 0, 5, 0.75)]
    assert [r[0].text for r in batch] == ["a", "c", "e"]
    assert ready is True
    assert fake.sync.closed


def test_async_client_retries_unavailable_then_gives_up():
    fake = FakeAioTriton(failures=[unavailable()] * 10)

    async def scenario():
        async with async_client_with(fake) as client:
            await client.extract("Paris is nice")

    with pytest.raises(ServerUnavailableError, match=r"\(gave up after 3 attempts\)$"):
        asyncio.run(scenario())
    assert len(fake.sync.calls) == 3


def test_async_batch_with_return_exceptions_keeps_slots():
    fake = FakeAioTriton(
        failures=[None, InferenceServerException(msg="bad", status="StatusCode.INVALID_ARGUMENT")]
    )

    async def scenario():
        async with async_client_with(fake, max_concurrency=1) as client:
            return await client.extract_batch(["a b", "c d", "e f"], return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[0] == [Entity("a", None, 0, 1, 0.75)]
    assert isinstance(results[1], InvalidInputError)
    assert results[2] == [Entity("e", None, 0, 1, 0.75)]


def test_async_closed_client_refuses_calls():
    async def scenario():
        client = async_client_with(FakeAioTriton())
        await client.close()
        await client.extract("Paris is nice")

    with pytest.raises(InstructNERError, match="is closed"):
        asyncio.run(scenario())


def test_the_callers_trace_context_travels_with_each_call_and_batch_item():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    fake = FakeTriton()
    with client_with(fake, metadata={"authorization": "Bearer t"}) as client:
        client.ner("Alpha beta .", ["person"])  # no span: only the client's own metadata
        with tracer.start_as_current_span("request") as span:
            client.ner("Alpha beta .", ["person"])
            client.ner_batch(["Alpha one .", "Bravo two ."], ["person"])
            trace_id = format(span.get_span_context().trace_id, "032x")
    assert fake.calls[0]["headers"] == {"authorization": "Bearer t"}
    for call in fake.calls[1:]:
        assert call["headers"]["authorization"] == "Bearer t"
        version, traced, _parent, _flags = call["headers"]["traceparent"].split("-")
        assert (version, traced) == ("00", trace_id)
    assert trace.get_current_span().get_span_context().is_valid is False
