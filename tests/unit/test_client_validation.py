"""Argument checks of the client: every bad call fails before anything is sent."""

import math
from pathlib import Path

import pytest
from instructner_client import (
    InstructNERClient,
    InvalidInputError,
    Keepalive,
    RetryPolicy,
    TLSConfig,
)
from instructner_client._core import batch_requests
from instructner_client._validation import InferenceRequest, check_timeout, make_request

TEXT = "EU rejects German call to boycott British lamb ."


def test_ner_request_keeps_text_and_labels():
    request = make_request("ner", TEXT, ["organization", "misc"])
    assert request == InferenceRequest("ner", TEXT, ("organization", "misc"))


def test_type_request_keeps_entities():
    request = make_request("type", TEXT, ["misc"], ["German", "British"])
    assert request.entities == ("German", "British")


def test_unknown_task_is_rejected_with_the_valid_ones():
    with pytest.raises(
        InvalidInputError, match=r"unknown task 'tag': expected one of ner, extract, type"
    ):
        make_request("tag", TEXT)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_text_is_rejected(text):
    with pytest.raises(InvalidInputError, match="text must not be empty or only whitespace"):
        make_request("extract", text)


def test_non_str_text_is_rejected_naming_the_type():
    with pytest.raises(InvalidInputError, match="text must be a str, got bytes"):
        make_request("extract", TEXT.encode())


def test_text_with_lone_surrogate_is_rejected_as_not_utf8():
    with pytest.raises(InvalidInputError, match="text is not encodable as UTF-8 at character 3"):
        make_request("extract", "abc\ud800def")


def test_single_string_as_labels_is_rejected_as_a_common_mistake():
    with pytest.raises(
        InvalidInputError, match="labels must be a list of strings, got a single str 'person'"
    ):
        make_request("ner", TEXT, "person")


def test_empty_labels_are_rejected_for_ner():
    with pytest.raises(InvalidInputError, match="labels must not be empty"):
        make_request("ner", TEXT, [])


def test_label_with_comma_is_rejected_because_it_splits_the_options():
    with pytest.raises(InvalidInputError, match=r"labels\[1\] 'city, town' contains a comma"):
        make_request("ner", TEXT, ["person", "city, town"])


def test_duplicate_label_is_rejected_case_insensitively():
    with pytest.raises(
        InvalidInputError, match=r"labels\[2\] 'Person' repeats labels\[0\] 'person'"
    ):
        make_request("ner", TEXT, ["person", "location", "Person"])


def test_labels_differing_only_in_inner_whitespace_are_duplicates():
    with pytest.raises(InvalidInputError, match=r"labels\[1\] 'new  york' repeats labels\[0\]"):
        make_request("ner", TEXT, ["New York", "new  york"])


def test_duplicate_entity_is_rejected():
    with pytest.raises(InvalidInputError, match=r"entities\[1\] 'EU' repeats entities\[0\]"):
        make_request("type", TEXT, ["misc"], ["EU", "EU"])


def test_label_with_surrounding_whitespace_is_rejected():
    with pytest.raises(
        InvalidInputError, match=r"labels\[0\] ' person' has leading or trailing whitespace"
    ):
        make_request("ner", TEXT, [" person"])


def test_non_str_label_is_rejected_naming_its_index():
    with pytest.raises(InvalidInputError, match=r"labels\[1\] must be a str, got int"):
        make_request("ner", TEXT, ["person", 3])


def test_entities_not_in_text_are_rejected():
    with pytest.raises(
        InvalidInputError, match=r"entities\[1\] 'French' does not occur in the text"
    ):
        make_request("type", TEXT, ["misc"], ["German", "French"])


def test_entity_with_comma_is_allowed_when_it_occurs_in_text():
    request = make_request("type", "Smith, John met Ann .", ["person"], ["Smith, John"])
    assert request.entities == ("Smith, John",)


def test_type_without_entities_is_rejected():
    with pytest.raises(InvalidInputError, match="entities must not be empty"):
        make_request("type", TEXT, ["misc"], [])


def test_extract_with_labels_is_rejected_instead_of_ignored():
    with pytest.raises(InvalidInputError, match="labels are not used by the extract task"):
        make_request("extract", TEXT, ["person"])


def test_ner_with_entities_is_rejected_instead_of_ignored():
    with pytest.raises(InvalidInputError, match="entities are not used by the ner task"):
        make_request("ner", TEXT, ["person"], ["EU"])


@pytest.mark.parametrize("bad", [0, -1, math.inf, math.nan])
def test_non_positive_or_infinite_timeout_is_rejected(bad):
    with pytest.raises(
        InvalidInputError, match="timeout must be a positive finite number of seconds"
    ):
        check_timeout(bad)


@pytest.mark.parametrize("bad", [None, "5", True])
def test_non_number_timeout_is_rejected(bad):
    with pytest.raises(InvalidInputError, match="timeout must be a number of seconds"):
        check_timeout(bad)


def test_batch_marks_only_the_invalid_item_with_its_index():
    items = batch_requests("ner", [TEXT, " ", TEXT], ["misc"])
    assert isinstance(items[0], InferenceRequest)
    assert isinstance(items[1], InvalidInputError)
    assert str(items[1]) == "texts[1]: text must not be empty or only whitespace"
    assert isinstance(items[2], InferenceRequest)


def test_batch_with_bad_labels_raises_once_for_all_items():
    with pytest.raises(InvalidInputError, match="labels must not be empty"):
        batch_requests("ner", [TEXT, TEXT], [])


def test_batch_given_a_single_string_is_rejected():
    with pytest.raises(InvalidInputError, match="texts must be a list of str, got str"):
        batch_requests("extract", TEXT)


def test_type_batch_needs_one_entity_list_per_text():
    with pytest.raises(InvalidInputError, match="entities has 1 lists for 2 texts"):
        batch_requests("type", [TEXT, TEXT], ["misc"], [["EU"]])


# Client construction: every connection option is checked before any channel is used.


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("grpc://localhost:8001", "must be 'host:port' without a scheme"),
        ("localhost", "must be 'host:port' with a port in 1..65535"),
        ("localhost:0", "must be 'host:port' with a port in 1..65535"),
        ("localhost:http", "must be 'host:port' with a port in 1..65535"),
        ("", "url must be a non-empty 'host:port' string"),
    ],
)
def test_bad_url_is_rejected(url, message):
    with pytest.raises(InvalidInputError, match=message):
        InstructNERClient(url)


def test_ipv6_url_is_accepted():
    with InstructNERClient("[::1]:8001") as client:
        assert client.url == "[::1]:8001"


def test_model_version_must_be_a_number_or_empty():
    with pytest.raises(
        InvalidInputError,
        match="model_version must be '' \\(latest\\) or a version number, got 'v1'",
    ):
        InstructNERClient("localhost:8001", model_version="v1")


def test_int_model_version_is_accepted_as_its_string():
    with InstructNERClient("localhost:8001", model_version=2) as client:
        assert client._settings.model_version == "2"
        assert client._settings.target == "model 'instruction_ner' version 2 at localhost:8001"


def test_empty_model_name_is_rejected():
    with pytest.raises(InvalidInputError, match="model_name must be a non-empty str"):
        InstructNERClient("localhost:8001", model_name=" ")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"Authorization": "x"}, "metadata key 'Authorization' must be lowercase"),
        ({"grpc-timeout": "1"}, "metadata key 'grpc-timeout' is reserved by gRPC"),
        ({"token-bin": "x"}, "binary headers are not supported"),
        (
            {"authorization": "line\nbreak"},
            "metadata value of 'authorization' must be printable ASCII",
        ),
    ],
)
def test_bad_metadata_is_rejected(metadata, message):
    with pytest.raises(InvalidInputError, match=message):
        InstructNERClient("localhost:8001", metadata=metadata)


def test_good_metadata_is_kept_for_every_call():
    with InstructNERClient("localhost:8001", metadata={"authorization": "Bearer abc"}) as client:
        assert client._settings.channel.metadata == {"authorization": "Bearer abc"}


@pytest.mark.parametrize("size", [0, -5, 2**31, 1.5, True])
def test_bad_max_message_bytes_is_rejected(size):
    with pytest.raises(
        InvalidInputError, match="max_message_bytes must be an int in 1..2147483647"
    ):
        InstructNERClient("localhost:8001", max_message_bytes=size)


def test_max_message_bytes_and_keepalive_become_channel_arguments():
    client = InstructNERClient(
        "localhost:8001",
        max_message_bytes=1024,
        keepalive=Keepalive(time_ms=10_000, timeout_ms=5_000, permit_without_calls=True),
    )
    args = dict(client._settings.channel.channel_args)
    client.close()
    assert args["grpc.max_send_message_length"] == 1024
    assert args["grpc.max_receive_message_length"] == 1024
    assert args["grpc.keepalive_time_ms"] == 10_000
    assert args["grpc.keepalive_timeout_ms"] == 5_000
    assert args["grpc.keepalive_permit_without_calls"] == 1


def test_no_keepalive_pings_unless_asked():
    with InstructNERClient("localhost:8001") as client:
        names = [name for name, _ in client._settings.channel.channel_args]
    assert not any("keepalive" in name for name in names)


def test_non_positive_keepalive_time_is_rejected():
    with pytest.raises(InvalidInputError, match="keepalive time_ms must be a positive int, got 0"):
        InstructNERClient("localhost:8001", keepalive=Keepalive(time_ms=0))


def test_tls_client_certificate_without_key_is_rejected():
    with pytest.raises(
        InvalidInputError, match="client_certificate and client_key must be given together"
    ):
        InstructNERClient("localhost:8001", tls=TLSConfig(client_certificate=b"pem"))


def test_tls_missing_root_certificate_file_is_named(tmp_path: Path):
    missing = tmp_path / "ca.pem"
    with pytest.raises(InvalidInputError, match=f"cannot read root certificate file '{missing}'"):
        InstructNERClient("localhost:8001", tls=TLSConfig(root_certificates=missing))


def test_tls_server_name_override_becomes_a_channel_argument():
    tls = TLSConfig(
        root_certificates=b"not checked until connecting", server_name_override="triton"
    )
    with InstructNERClient("localhost:8001", tls=tls) as client:
        args = dict(client._settings.channel.channel_args)
        assert client._settings.channel.credentials is not None
    assert args["grpc.ssl_target_name_override"] == "triton"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1, got 0"),
        ({"initial_backoff": -1.0}, "initial_backoff must be a finite number >= 0"),
        ({"multiplier": 0.5}, "multiplier must be >= 1"),
        ({"jitter": 1.5}, r"jitter must be within \[0, 1\]"),
    ],
)
def test_bad_retry_policy_is_rejected(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        RetryPolicy(**kwargs)


def test_retry_backoff_grows_and_is_capped():
    policy = RetryPolicy(initial_backoff=0.1, multiplier=2.0, max_backoff=0.3, jitter=0.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_retry_backoff_jitter_only_shortens_the_wait():
    policy = RetryPolicy(initial_backoff=1.0, jitter=0.5)
    waits = [policy.backoff(1) for _ in range(200)]
    assert all(0.5 <= wait <= 1.0 for wait in waits)
    assert len(set(waits)) > 1


def test_bad_max_concurrency_is_rejected():
    with pytest.raises(InvalidInputError, match="max_concurrency must be an int >= 1, got 0"):
        InstructNERClient("localhost:8001", max_concurrency=0)
