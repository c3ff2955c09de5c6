"""The first-GPU acceptance script, run against the session's CPU server as both sides.

The fixture model answers "EU is an organization, Brussels is a location." to every NER
prompt, so the test corpus is a small CoNLL file of sentences naming them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from instructner.deploy.server import TritonServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SENTENCES = [
    [("EU", "B-ORG"), ("officials", "O"), ("met", "O"), ("in", "O"), ("Brussels", "B-LOC")],
    [("Brussels", "B-LOC"), ("hosted", "O"), ("the", "O"), ("EU", "B-ORG"), (".", "O")],
    [("Nothing", "O"), ("here", "O"), (".", "O")],
]


def acceptance_module():
    spec = importlib.util.spec_from_file_location(
        "gpu_acceptance", REPO / "deploy/gpu_acceptance.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_corpus(root: Path) -> Path:
    lines = ["-DOCSTART- -X- -X- O", ""]
    for sentence in SENTENCES:
        lines += [f"{word} NNP B-NP {tag}" for word, tag in sentence] + [""]
    (root / "conll2003").mkdir(parents=True)
    (root / "conll2003" / "test.txt").write_text("\n".join(lines), encoding="utf-8")
    return root


def test_acceptance_passes_when_both_servers_answer_alike(tmp_path, triton_server: TritonServer):
    url = triton_server.config.grpc_url
    out = tmp_path / "report.json"
    argv = ["--url", url, "--reference-url", url, "--data-root", str(write_corpus(tmp_path / "d"))]
    admin = triton_server.config.admin
    perf = ["--perf-concurrency", "1", "--admin-key", admin.key, "--admin-header", admin.header]
    code = acceptance_module().main([*argv, "--concurrency", "4", *perf, "--out", str(out)])
    report = json.loads(out.read_text())
    assert code == 0, report
    assert set(report["checks"]) == {"ready", "parity", "batching", "scores", "tasks"}
    (level,) = report["perf_analyzer"]["levels"]
    assert level["concurrency"] == 1 and level["requests_per_s"] > 0, report["perf_analyzer"]
    assert "| perf_analyzer c=1 |" in out.with_suffix(".md").read_text()
    assert report["checks"]["parity"]["agreement"] == 1.0
    assert report["checks"]["parity"]["gpu_f1"] == 1.0
    assert report["checks"]["scores"]["entities"] == 8  # 4 entities at concurrency 1 and 4


def test_acceptance_fails_with_a_reason_when_the_gpu_server_is_down(tmp_path):
    from tests.harness import free_port

    out = tmp_path / "report.json"
    down = f"127.0.0.1:{free_port()}"
    argv = [
        "--url",
        down,
        "--reference-url",
        down,
        "--data-root",
        str(write_corpus(tmp_path / "d")),
    ]
    argv += ["--perf-concurrency", ""]
    assert acceptance_module().main([*argv, "--timeout", "2", "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["passed"] is False and report["checks"]["ready"]["passed"] is False


def test_recorded_reference_answers_are_compared_and_a_divergence_fails_with_a_report(
    tmp_path, triton_server: TritonServer
):
    module = acceptance_module()
    url = triton_server.config.grpc_url
    data = ["--data-root", str(write_corpus(tmp_path / "d")), "--perf-concurrency", ""]
    recording = tmp_path / "cpu-answers.json"
    assert module.main(["--url", url, "--record", str(recording), *data]) == 0
    out = tmp_path / "report.json"
    argv = ["--url", url, "--reference-answers", str(recording), *data, "--out", str(out)]
    assert module.main(argv) == 0
    record = json.loads(recording.read_text())
    record["answers"][0] = []  # the "CPU" missed the first sentence's entities
    recording.write_text(json.dumps(record))
    assert module.main([*argv, "--min-agreement", "0.9"]) == 1
    report = json.loads(out.read_text())
    assert report["checks"]["parity"]["passed"] is False
    assert report["checks"]["parity"]["agreement"] == 2 / 3
    assert "| parity | FAILED |" in out.with_suffix(".md").read_text()


def test_dry_run_prints_the_plan_of_each_gpu_engine_and_contacts_nothing(capsys):
    module = acceptance_module()
    assert module.main(["--url", "gpu:8001", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "--record cpu-answers.json" in plan and "deploy/docker/entrypoint.sh serve" in plan
    assert "(deploy/docker/Dockerfile)" in plan and "make engines-trtllm" in plan
    assert "instruction_ner at concurrency 1, 16, 64" in plan
    assert module.main(["--url", "gpu:8001", "--dry-run", "--engine", "ctranslate2"]) == 0
    plan = capsys.readouterr().out
    assert "Dockerfile.ctranslate2-cuda" in plan and "--engine ctranslate2" in plan
