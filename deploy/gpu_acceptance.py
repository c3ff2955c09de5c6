"""First-GPU acceptance: check that a GPU server answers like the CPU server, and time it.

Either GPU engine (``--engine``): ``tensorrt_llm`` (deploy/docker/Dockerfile) or
``ctranslate2`` (CTranslate2 on CUDA, deploy/docker/Dockerfile.ctranslate2-cuda).

Plan (``--dry-run`` prints it; ``make gpu-acceptance DRY_RUN=1``): on a CPU machine, record
the CPU engine's answers for the checkpoint (``make serve``, then ``--record answers.json
--url CPU_HOST:8001``); on the GPU machine, start the GPU repository
(``deploy/docker/entrypoint.sh serve`` in the engine's image), then check it against the
recording (``--reference-answers answers.json``) or against a live CPU server
(``--reference-url``):

    python deploy/gpu_acceptance.py --url GPU_HOST:8001 --reference-answers answers.json \
        --sentences 256 --out gpu-acceptance.json      # or: make gpu-acceptance GPU_URL=...

The JSON report has a markdown twin (same name, ``.md``).

Checks, each recorded in the JSON report (exit code 1 if any fails):

1. ready: both servers answer `is_ready`.
2. parity: the first N CoNLL-2003 test sentences, one request each, concurrency 1: the share
   of sentences whose entities (span and label) are the same on both servers (the GPU engine
   runs bfloat16, the CPU engine int8: a few answers may differ; at least --min-agreement),
   and each server's strict F1 against the gold spans (the GPU's at most --max-f1-drop below).
3. batching: the same sentences at concurrency --concurrency on the GPU server must give the
   answers of concurrency 1 (upstream TensorRT-LLM issue 1999: T5 outputs degraded at batch
   >= 18 with input padding removed; at least --min-agreement). If it fails, the report says so
   and gives the fallback: rebuild the engines with ``--max-batch-size 16``.
4. scores: every GPU entity has a score in [0, 1] (the tensorrt_llm model's
   output_log_probs reach the answer parsing).
5. tasks: extract and type answer on a sentence, and a document over the part size is split
   and merged with offsets into it.
Throughput of both runs (sentences/s) is reported, not checked; with perf_analyzer (this
checkout's venv: ``tritonclient``), ``instruction_ner`` is also measured at each
``--perf-concurrency`` level over gRPC (one sentence per request; throughput and p50/p99).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructner_client import Entity, InstructNERClient, InstructNERError

from instructner.method.labels import get_verbalizer
from instructner.research.data import load_corpus
from instructner.research.metrics import score_spans

logger = logging.getLogger("gpu_acceptance")
CORPUS = "conll2003"
ENGINES = ("tensorrt_llm", "ctranslate2")
# how each engine's GPU server is started (plan) and what to do when batching changes answers
SERVERS = {
    "tensorrt_llm": "pinned TensorRT-LLM image (deploy/docker/Dockerfile): "
    "deploy/docker/entrypoint.sh serve (make engines-trtllm from MODEL_DIR, then tritonserver "
    "on 8000/8001/8002)",
    "ctranslate2": "CTranslate2 image (deploy/docker/Dockerfile.ctranslate2-cuda): "
    "deploy/docker/entrypoint.sh serve (instructner build --device cuda from MODEL_DIR, then "
    "tritonserver on 8000/8001/8002)",
}
FALLBACKS = {
    "tensorrt_llm": "answers diverge at concurrency {} (upstream TensorRT-LLM issue 1999): "
    "rebuild the engines with --max-batch-size 16 (make engines-trtllm ... or build_trtllm "
    "--max-batch-size 16) and rerun",
    "ctranslate2": "answers diverge at concurrency {}: compare with CT2_COMPUTE_TYPE=int8_float32 "
    "(no half precision) and report the sentences that differ",
}


def _spans(entities: Sequence[Entity]) -> list[tuple[int, int, str]]:
    return [(e.start, e.end, str(e.label)) for e in entities]


def _answers(
    client: InstructNERClient, texts: list[str], labels: list[str], concurrency: int
) -> tuple[list[list[Entity]], float]:
    started = time.perf_counter()
    answers = client.ner_batch(texts, labels, max_concurrency=concurrency)
    return answers, len(texts) / (time.perf_counter() - started)


def _f1(answers: list[list[Entity]], sentences: list[Any], tag_of: Any) -> float:
    gold = [[(e.start, e.end, str(e.label)) for e in s.char_spans()] for s in sentences]
    pred = [[(e.start, e.end, tag_of(str(e.label))) for e in a] for a in answers]
    return score_spans(gold, pred).f1


def _agreement(first: list[list[Entity]], second: list[list[Entity]]) -> float:
    same = sum(_spans(a) == _spans(b) for a, b in zip(first, second, strict=True))
    return same / len(first) if first else 0.0


def _workload(args: argparse.Namespace) -> tuple[list[Any], Any, list[str], list[str]]:
    sentences = load_corpus(CORPUS, "test", args.data_root)[: args.sentences]
    verbalizer = get_verbalizer(CORPUS)
    return sentences, verbalizer, list(verbalizer.words), [s.text for s in sentences]


def record_answers(args: argparse.Namespace) -> int:
    """Write a server's answers (the CPU reference) for the workload to ``args.record``."""
    _, _, labels, texts = _workload(args)
    with InstructNERClient(args.url, timeout=args.timeout) as client:
        answers, rate = _answers(client, texts, labels, 1)
    record = {
        "server": args.url,
        "sentences": len(texts),
        "sentences_per_s": rate,
        "answers": [[e.to_dict() for e in answer] for answer in answers],
    }
    args.record.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    logger.info("recorded %d answers of %s in %s", len(texts), args.url, args.record)
    return 0


def _recorded(path: Path, count: int) -> tuple[list[list[Entity]], float | None]:
    record = json.loads(path.read_text(encoding="utf-8"))
    if record["sentences"] < count:
        raise ValueError(f"{path} holds {record['sentences']} answers, {count} are needed")
    answers = [[Entity(**e) for e in answer] for answer in record["answers"][:count]]
    return answers, record.get("sentences_per_s")


def run_checks(args: argparse.Namespace) -> dict[str, Any]:
    """Run every check against the GPU server and the reference; return the report."""
    sentences, verbalizer, labels, texts = _workload(args)
    reference = args.reference_url or str(args.reference_answers)
    report: dict[str, Any] = {
        "gpu": args.url,
        "engine": args.engine,
        "reference": reference,
        "checks": {},
    }
    checks = report["checks"]
    with InstructNERClient(args.url, timeout=args.timeout) as gpu:
        if args.reference_url:
            with InstructNERClient(args.reference_url, timeout=args.timeout) as cpu:
                checks["ready"] = {"passed": gpu.is_ready() and cpu.is_ready()}
                if not checks["ready"]["passed"]:
                    return report
                cpu_one, cpu_rate = _answers(cpu, texts, labels, 1)
        else:
            checks["ready"] = {"passed": gpu.is_ready()}
            if not checks["ready"]["passed"]:
                return report
            cpu_one, cpu_rate = _recorded(args.reference_answers, len(texts))
        gpu_one, gpu_rate = _answers(gpu, texts, labels, 1)
        gpu_f1, cpu_f1 = (_f1(a, sentences, verbalizer.tag) for a in (gpu_one, cpu_one))
        agreement = _agreement(gpu_one, cpu_one)
        checks["parity"] = {
            "sentences": len(texts),
            "agreement": agreement,
            "gpu_f1": gpu_f1,
            "reference_f1": cpu_f1,
            "passed": agreement >= args.min_agreement and gpu_f1 >= cpu_f1 - args.max_f1_drop,
        }
        gpu_many, gpu_rate_many = _answers(gpu, texts, labels, args.concurrency)
        batched = _agreement(gpu_many, gpu_one)
        checks["batching"] = {
            "concurrency": args.concurrency,
            "agreement_with_concurrency_1": batched,
            "passed": batched >= args.min_agreement,
        }
        if not checks["batching"]["passed"]:
            checks["batching"]["fallback"] = FALLBACKS[args.engine].format(args.concurrency)
        scores = [e.score for answer in gpu_one + gpu_many for e in answer]
        checks["scores"] = {
            "entities": len(scores),
            "passed": bool(scores) and all(s is not None and 0.0 <= s <= 1.0 for s in scores),
        }
        text = texts[0]
        extract = gpu.extract(text)
        words = list(dict.fromkeys(e.text for e in gpu_one[0]))[:2] or text.split()[:1]
        typed = gpu.type(text, entities=words, labels=labels)
        document = "\n\n".join(texts[:40])
        merged = gpu.ner_document(document, labels, max_chars=max(200, len(document) // 4))
        checks["tasks"] = {
            "extract_entities": len(extract),
            "typed_entities": len(typed),
            "document_entities": len(merged),
            "passed": all(document[e.start : e.end] == e.text for e in merged)
            and all(text[e.start : e.end] == e.text for e in extract + typed),
        }
        report["throughput_sentences_per_s"] = {
            "gpu_concurrency_1": gpu_rate,
            f"gpu_concurrency_{args.concurrency}": gpu_rate_many,
            "reference_concurrency_1": cpu_rate,
        }
    if args.perf_concurrency:
        report["perf_analyzer"] = perf_levels(args, texts, labels)
    return report


def perf_levels(args: argparse.Namespace, texts: list[str], labels: list[str]) -> dict[str, Any]:
    """Measure instruction_ner on the GPU server with perf_analyzer at each concurrency."""
    try:
        from bench.perf import PerfAnalyzer, PerfError, find_perf_analyzer, library_dir
        from bench.profiles import PerfSettings
    except ImportError as error:  # not run from a checkout: the checks stand without it
        return {"skipped": f"perf_analyzer tooling not importable: {error}"}
    try:
        binary = find_perf_analyzer()
    except (FileNotFoundError, RuntimeError) as error:
        return {"skipped": str(error)}
    workdir = args.out.parent / f"{args.out.stem}-perf"
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "input_instruction_ner.json"
    rows = [{"TEXT": [t], "LABELS": {"content": labels, "shape": [len(labels)]}} for t in texts]
    data.write_text(json.dumps({"data": rows}), encoding="utf-8")
    # perf_analyzer reads the server's statistics, an admin endpoint: the operator's key
    headers = (
        {f"triton-grpc-protocol-{args.admin_header}": args.admin_key} if args.admin_key else {}
    )
    analyzer = PerfAnalyzer(
        binary=binary,
        libraries=library_dir(workdir / "libs"),
        url=args.url,
        log_dir=workdir,
        headers=headers,
    )
    settings = PerfSettings(
        window_ms=5000, stability_percent=30, max_trials=10, retry_unstable=True
    )
    levels = []
    for concurrency in args.perf_concurrency:
        try:
            level = analyzer.measure("instruction_ner", data, concurrency, settings)
        except PerfError as error:
            levels.append({"concurrency": concurrency, "error": str(error)})
            continue
        levels.append(
            {
                "concurrency": concurrency,
                "requests_per_s": round(level.throughput, 2),
                "p50_ms": None if level.p50_us is None else round(level.p50_us / 1000, 2),
                "p99_ms": None if level.p99_us is None else round(level.p99_us / 1000, 2),
                "stable": level.stable,
            }
        )
    return {"levels": levels, "logs": str(workdir)}


def plan(args: argparse.Namespace) -> str:
    """Return the acceptance run as the commands and checks it will take."""
    recording = args.reference_answers or Path("cpu-answers.json")
    reference = (
        f"--reference-url {args.reference_url}"
        if args.reference_url
        else f"--reference-answers {recording}"
    )
    return "\n".join(
        [
            "GPU acceptance plan",
            "1. CPU machine: make serve; python deploy/gpu_acceptance.py --url CPU:8001 "
            f"--record {recording} --sentences {args.sentences}",
            f"2. GPU machine, {SERVERS[args.engine]}",
            f"3. python deploy/gpu_acceptance.py --engine {args.engine} --url {args.url} "
            f"{reference} --sentences {args.sentences} --concurrency {args.concurrency} "
            f"--out {args.out}",
            f"   checks: ready; parity (answers equal on >= {args.min_agreement:.0%} of "
            f"{args.sentences} CoNLL-2003 test sentences, GPU F1 >= CPU F1 - "
            f"{args.max_f1_drop}); batching (concurrency {args.concurrency} answers = "
            "concurrency 1); scores in [0, 1]; tasks",
            "   perf_analyzer: instruction_ner at concurrency "
            + (", ".join(map(str, args.perf_concurrency)) or "(none)"),
            f"   reports: {args.out} and {args.out.with_suffix('.md')}",
        ]
    )


def markdown(report: dict[str, Any]) -> str:
    """Return the report as markdown."""
    lines = [
        f"# GPU acceptance: {'passed' if report.get('passed') else 'FAILED'}",
        "",
        f"GPU server `{report.get('gpu')}` ({report.get('engine')}), reference "
        f"`{report.get('reference')}`.",
        "",
        "| check | result | details |",
        "|---|---|---|",
    ]
    for name, check in report["checks"].items():
        details = ", ".join(f"{k} {v}" for k, v in check.items() if k != "passed")
        lines.append(f"| {name} | {'passed' if check['passed'] else 'FAILED'} | {details} |")
    for name, rate in report.get("throughput_sentences_per_s", {}).items():
        lines.append(f"| throughput {name} | {rate} sentences/s | |")
    for level in report.get("perf_analyzer", {}).get("levels", []):
        lines.append(
            f"| perf_analyzer c={level['concurrency']} | "
            + (level.get("error") or f"{level['requests_per_s']} requests/s")
            + f" | p50 {level.get('p50_ms')} ms, p99 {level.get('p99_ms')} ms |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the acceptance checks, write the report, exit 0 only if every check passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="gRPC host:port of the GPU server")
    parser.add_argument("--engine", choices=ENGINES, default="tensorrt_llm")
    parser.add_argument(
        "--perf-concurrency",
        type=lambda text: tuple(int(c) for c in text.split(",") if c),
        default=(1, 16, 64),
        help="perf_analyzer levels on the GPU server (default 1,16,64; '' skips)",
    )
    parser.add_argument(
        "--admin-key",
        default=os.environ.get("INSTRUCTNER_ADMIN_KEY", ""),
        help="the GPU server's admin key, for perf_analyzer's statistics calls (default: "
        "INSTRUCTNER_ADMIN_KEY)",
    )
    parser.add_argument("--admin-header", default="instructner-admin-key")
    reference = parser.add_mutually_exclusive_group()
    reference.add_argument("--reference-url", help="gRPC host:port of a CPU server of the model")
    reference.add_argument(
        "--reference-answers", type=Path, help="a CPU server's answers written by --record"
    )
    reference.add_argument(
        "--record", type=Path, help="only record --url's answers into this file (reference)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, contact nothing")
    parser.add_argument("--sentences", type=int, default=256, help="CoNLL-2003 test sentences")
    parser.add_argument("--concurrency", type=int, default=32, help="for the batching check")
    parser.add_argument("--min-agreement", type=float, default=0.9, help="share of answers")
    parser.add_argument("--max-f1-drop", type=float, default=0.02, help="GPU F1 below CPU F1")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--data-root", type=Path, help="folder of the shipped corpora")
    parser.add_argument("--out", type=Path, default=Path("gpu-acceptance.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.dry_run:
        sys.stdout.write(plan(args) + "\n")
        return 0
    if args.record:
        return record_answers(args)
    if not (args.reference_url or args.reference_answers):
        parser.error("give --reference-url or --reference-answers (or --record)")
    try:
        report = run_checks(args)
    except InstructNERError as error:  # a server error is a failed acceptance, with its reason
        report = {"checks": {"calls": {"passed": False, "error": str(error)}}}
    passed = bool(report["checks"]) and all(c["passed"] for c in report["checks"].values())
    report["passed"] = passed
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    for name, check in report["checks"].items():
        logger.info("%s: %s", name, "passed" if check["passed"] else f"FAILED {check}")
    logger.info("report: %s", args.out)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
