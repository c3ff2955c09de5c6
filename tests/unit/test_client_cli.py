"""The instructner-client command line against a fake server: output, batches, exit codes."""

import io
import json
import sys

import instructner_client._cli as cli
import pytest
from instructner_client import Entity, Extraction, InstructNERClient, TLSConfig, Window
from tritonclient.utils import InferenceServerException

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_client_calls import NO_WAIT, FakeTriton  # noqa: E402


@pytest.fixture
def server(monkeypatch):
    """Route the CLI's client to a fake tritonclient; yields the fake and the client kwargs."""
    fake = FakeTriton()
    seen = {}

    def make_client(url, **kwargs):
        seen.update(kwargs, url=url)
        client = InstructNERClient(url, retry=NO_WAIT, **kwargs)
        client._triton.close()
        client._triton = fake
        return client

    monkeypatch.setattr(cli, "InstructNERClient", make_client)
    fake.seen = seen
    return fake


def run_cli(monkeypatch, argv, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return cli.main(argv)


def test_ner_prints_a_table_and_exits_0(server, monkeypatch, capsys):
    code = run_cli(
        monkeypatch, ["ner", "Angela Merkel visited Paris", "--labels", "person,location"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines() == [
        "Angela Merkel visited Paris",
        "  TEXT    LABEL   START  END  SCORE",
        "  Angela  person  0      6    0.750",
    ]


def test_ner_json_prints_the_entities(server, monkeypatch, capsys):
    code = run_cli(monkeypatch, ["ner", "Paris is nice", "--labels", "location", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "text": "Paris is nice",
        "entities": [{"text": "Paris", "label": "location", "start": 0, "end": 5, "score": 0.75}],
        "generated_text": "Paris is a location.",
        "output_limit_reached": False,
    }


def test_labels_are_split_on_commas_and_stripped(server, monkeypatch, capsys):
    run_cli(monkeypatch, ["ner", "Paris is nice", "--labels", " location , person "])
    assert "location" in capsys.readouterr().out


def test_connection_options_work_before_and_after_the_command(server, monkeypatch, capsys):
    run_cli(monkeypatch, ["--url", "host:1", "--timeout", "3", "extract", "Paris is nice"])
    assert (server.seen["url"], server.seen["timeout"]) == ("host:1", 3.0)
    run_cli(
        monkeypatch,
        ["extract", "Paris is nice", "--url", "other:2", "--model", "m", "--model-version", "4"],
    )
    assert (server.seen["url"], server.seen["model_name"], server.seen["model_version"]) == (
        "other:2",
        "m",
        "4",
    )


def test_headers_and_tls_files_are_passed_to_the_client(server, monkeypatch, capsys):
    run_cli(
        monkeypatch,
        [
            "extract",
            "Paris is nice",
            "--header",
            "Authorization=Bearer x",
            "--root-cert",
            "/dev/null",
        ],
    )
    assert server.seen["metadata"] == {"authorization": "Bearer x"}
    assert server.seen["tls"] == TLSConfig(root_certificates="/dev/null")


def test_plaintext_unless_tls_is_asked_for(server, monkeypatch, capsys):
    run_cli(monkeypatch, ["extract", "Paris is nice"])
    assert server.seen["tls"] is None


def test_stdin_lines_are_a_batch_in_input_order_with_line_numbers(server, monkeypatch, capsys):
    code = run_cli(monkeypatch, ["extract", "--json", "--no-progress"], stdin="a b\n\nc d\ne f\n")
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [(r["line"], r["entities"][0]["text"]) for r in records] == [
        (1, "a"),
        (3, "c"),
        (4, "e"),
    ]


def test_type_reads_json_lines_from_stdin(server, monkeypatch, capsys):
    stdin = '{"text": "Ann met Bob", "entities": ["Ann"]}\n'
    code = run_cli(monkeypatch, ["type", "--labels", "person", "--json"], stdin=stdin)
    assert code == 0
    assert json.loads(capsys.readouterr().out)["entities"] == [
        {"text": "Ann", "label": "person", "start": 0, "end": 3, "score": 0.75}
    ]


def test_type_text_with_entities_argument(server, monkeypatch, capsys):
    code = run_cli(
        monkeypatch, ["type", "Ann met Bob", "--entities", "Ann", "--labels", "person", "--json"]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["entities"][0]["label"] == "person"


def test_type_stdin_line_that_is_not_json_is_a_usage_error(server, monkeypatch, capsys):
    code = run_cli(monkeypatch, ["type", "--labels", "person"], stdin="Ann met Bob\n")
    assert code == 2
    assert "stdin line 1: not JSON" in capsys.readouterr().err
    assert server.calls == []


def test_type_without_entities_for_text_is_a_usage_error(server, monkeypatch, capsys):
    code = run_cli(monkeypatch, ["type", "Ann met Bob", "--labels", "person"])
    assert code == 2
    assert "type needs --entities, --entity or --span for TEXT" in capsys.readouterr().err


def test_invalid_labels_exit_2_before_sending(server, monkeypatch, capsys):
    code = run_cli(monkeypatch, ["ner", "Paris is nice", "--labels", "place,place"])
    assert code == 2
    assert "invalid input: labels[1] 'place' repeats labels[0] 'place'" in capsys.readouterr().err
    assert server.calls == []


def test_server_rejecting_the_input_exits_2(server, monkeypatch, capsys):
    server.failures = [
        InferenceServerException(msg="text too long", status="StatusCode.INVALID_ARGUMENT")
    ]
    code = run_cli(monkeypatch, ["extract", "Paris is nice"])
    assert code == 2
    assert "rejected the request: text too long" in capsys.readouterr().err


def test_server_error_exits_1(server, monkeypatch, capsys):
    server.failures = [InferenceServerException(msg="engine crashed", status="StatusCode.INTERNAL")]
    code = run_cli(monkeypatch, ["extract", "Paris is nice"])
    assert code == 1
    assert (
        "InstructNERError: model 'instruction_ner' at localhost:8001 failed with INTERNAL: "
        "engine crashed" in capsys.readouterr().err
    )


def test_batch_reports_each_failed_line_and_exits_1_on_a_server_error(server, monkeypatch, capsys):
    server.failures = [
        None,
        InferenceServerException(msg="engine crashed", status="StatusCode.INTERNAL"),
    ]
    code = run_cli(
        monkeypatch, ["extract", "--json", "--concurrency", "1"], stdin="a b\nc d\ne f\n"
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert records[1]["error"]["type"] == "InstructNERError"
    assert "engine crashed" in records[1]["error"]["message"]
    assert "entities" in records[0] and "entities" in records[2]


def test_batch_with_only_invalid_lines_failing_exits_2(server, monkeypatch, capsys):
    server.failures = [InferenceServerException(msg="bad", status="StatusCode.INVALID_ARGUMENT")]
    code = run_cli(monkeypatch, ["extract", "--concurrency", "1"], stdin="a b\nc d\n")
    out = capsys.readouterr().out
    assert code == 2
    assert (
        "line 1: a b\n  error: model 'instruction_ner' at localhost:8001 rejected the request: bad"
        in out
    )


def test_missing_labels_is_an_argparse_usage_error(server, monkeypatch, capsys):
    with pytest.raises(SystemExit) as caught:
        run_cli(monkeypatch, ["ner", "Paris is nice"])
    assert caught.value.code == 2
    assert "the following arguments are required: --labels" in capsys.readouterr().err


def test_bad_header_is_an_argparse_usage_error(server, monkeypatch, capsys):
    with pytest.raises(SystemExit) as caught:
        run_cli(monkeypatch, ["extract", "x", "--header", "novalue"])
    assert caught.value.code == 2
    assert "header 'novalue' must be KEY=VALUE" in capsys.readouterr().err


def test_empty_result_prints_no_entities(server, monkeypatch, capsys):
    assert cli._entities_table([]) == ["  (no entities)"]


def test_cut_answer_is_flagged_in_table_and_json():
    extraction = Extraction(
        task="extract",
        text="Ann met Bob",
        entities=(Entity("Ann", None, 0, 3),),
        generated_text="Ann, B",
        windows=(Window(0, 11, "Ann, B", 20, 4, True),),
    )
    item = cli._Item(0, "Ann met Bob")
    table = cli._render(item, extraction, as_json=False)
    assert table.splitlines()[-1] == (
        "  warning: the answer was cut at the output token limit: "
        "entities after the cut are missing"
    )
    assert json.loads(cli._render(item, extraction, as_json=True))["output_limit_reached"] is True


def test_progress_without_tqdm_falls_back_to_no_bar(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `from tqdm import tqdm` fail
    bar, on_done = cli._progress(3, enabled=True)
    with bar:
        on_done(0)
    assert bar.__class__.__name__ == "nullcontext"


def test_progress_bar_counts_finished_items(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar, on_done = cli._progress(3, enabled=True)
    with bar:
        on_done(2)
        on_done(0)
        assert bar.n == 2


def test_min_score_is_sent_and_the_server_keeps_only_entities_at_or_above_it(
    server, monkeypatch, capsys
):
    assert run_cli(monkeypatch, ["extract", "Paris is nice", "--min-score", "0.7", "--json"]) == 0
    assert [e["text"] for e in json.loads(capsys.readouterr().out)["entities"]] == ["Paris"]
    assert run_cli(monkeypatch, ["extract", "Paris is nice", "--min-score", "0.9", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entities"] == []


@pytest.mark.parametrize("value", ["1.5", "-0.1", "high", "nan"])
def test_min_score_outside_zero_one_is_bad_usage(server, monkeypatch, capsys, value):
    with pytest.raises(SystemExit) as info:
        run_cli(monkeypatch, ["extract", "Paris is nice", "--min-score", value])
    assert info.value.code == 2
    assert "--min-score: expected a number in [0, 1]" in capsys.readouterr().err


def test_entities_are_comma_separated_and_the_text_may_follow_them(server, monkeypatch, capsys):
    argv = ["type", "--labels", "person", "--entities", "Ann, Bob", "Ann met Bob", "--json"]
    assert run_cli(monkeypatch, argv) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "Ann met Bob"
    sent = server.calls[-1]
    assert sent["ENTITIES"] == ["Ann", "Bob"]


def test_an_entity_with_a_comma_goes_in_entity(server, monkeypatch, capsys):
    text = "Crosby, Stills, Nash & Young played ."
    argv = ["type", text, "--labels", "band", "--entity", "Crosby, Stills, Nash & Young"]
    assert run_cli(monkeypatch, [*argv, "--json"]) == 0
    assert server.calls[-1]["ENTITIES"] == ["Crosby, Stills, Nash & Young"]


def test_version_prints_the_client_version(monkeypatch, capsys):
    from instructner_client import __version__

    with pytest.raises(SystemExit) as info:
        run_cli(monkeypatch, ["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"instructner-client {__version__}"


def test_help_shows_the_defaults(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        run_cli(monkeypatch, ["ner", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: localhost:8001)" in out and "(default: instruction_ner)" in out
    assert "not its HTTP port" in out and "(default: 0, keep all)" in out


HILTON = "Paris Hilton visited Paris"


def test_cli_span_types_that_occurrence(server, monkeypatch, capsys):
    argv = ["type", HILTON, "--labels", "person,location", "--span", "21:26", "--json"]
    assert run_cli(monkeypatch, argv) == 0
    assert server.calls[-1]["ENTITIES"] == ["Paris"]
    assert server.calls[-1]["ENTITY_SPANS"] == [(21, 26)]


def test_cli_span_that_is_not_start_end_is_a_usage_error(server, monkeypatch, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(monkeypatch, ["type", HILTON, "--labels", "person", "--span", "21-26"])
    assert info.value.code == 2
    assert (
        "expected START:END character offsets, e.g. 21:26, got '21-26'" in capsys.readouterr().err
    )
    assert server.calls == []


def test_cli_refuses_words_and_spans_together(server, monkeypatch, capsys):
    argv = ["type", HILTON, "--labels", "person", "--entities", "Paris", "--span", "21:26"]
    assert run_cli(monkeypatch, argv) == 2
    assert "as words (--entities, --entity) or as --span, not both" in capsys.readouterr().err


def test_cli_span_out_of_range_exits_2_naming_it(server, monkeypatch, capsys):
    argv = ["type", HILTON, "--labels", "person", "--span", "21:40"]
    assert run_cli(monkeypatch, argv) == 2
    assert "entities[0] (21, 40) is not a span of the text" in capsys.readouterr().err
    assert server.calls == []


def test_cli_stdin_lines_may_give_spans_as_pairs(server, monkeypatch, capsys):
    line = json.dumps({"text": HILTON, "entities": [[21, 26]]})
    assert run_cli(monkeypatch, ["type", "--labels", "person", "--json"], stdin=line + "\n") == 0
    assert server.calls[-1]["ENTITY_SPANS"] == [(21, 26)]


def test_cli_file_document_sends_spans_in_document_offsets(server, monkeypatch, capsys, tmp_path):
    text = ("Nothing here . " * 2000) + HILTON
    second = len(text) - len("Paris")
    path = tmp_path / "doc.txt"
    path.write_text(text, encoding="utf-8")
    argv = ["type", "--file", str(path), "--labels", "person", "--span", f"{second}:{second + 5}"]
    assert run_cli(monkeypatch, [*argv, "--json"]) == 0
    (call,) = server.calls
    start, end = call["ENTITY_SPANS"][0]
    assert call["text"][start:end] == "Paris"
