"""Where the engine runs: the ``steps`` places of ``instruction_ner`` side by side.

The shipped model's repository is built once per place (``embedded``: the engine inside
``instruction_ner``; ``inline``: one call to the engine model per window, the GPU layout),
each is served in turn on free loopback ports, and ``instruction_ner`` is measured with
perf_analyzer on the same inputs: single CoNLL-2003 sentences at each concurrency, and
documents of several sentences. Every place's answers on the sentences are compared with
``embedded``'s. Writes ``steps.json``, ``steps.csv`` and ``steps.png`` under
``bench/results/<time>-steps/``.

Usage: ``python -m bench.steps [--model DIR] [--sentences N] [--concurrency 1,8]``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.machine import CpuMonitor, QuietGate, machine_info
from bench.perf import PerfAnalyzer, PerfLevel, find_perf_analyzer, library_dir
from bench.profiles import PerfSettings
from bench.scaling import SEPARATOR, documents_input_data
from bench.served import served_results, start_server
from bench.workload import ensemble_input_data, load_workload, write_json
from instructner.deploy.build import BuildSettings, ensure_repository
from instructner.serving.limits import Limits
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.triton_glue import STEP_PLACES

MODEL = "instruction_ner"
PERF = PerfSettings(window_ms=3000, stability_percent=30, max_trials=8, retry_unstable=True)

logger = logging.getLogger(__name__)


def say(message: str) -> None:
    """Report progress on stderr."""
    print(f"[steps] {message}", file=sys.stderr, flush=True)  # noqa: T201 - progress


def measure_place(
    place: str, model_dir: Path, build_dir: Path, inputs: dict[str, Path], args: argparse.Namespace
) -> dict[str, Any]:
    """Build, serve and measure one place; return its levels and its answers."""
    build = ensure_repository(
        BuildSettings(model_dir=model_dir, out_dir=build_dir / place, steps=place)
    )
    server = start_server(build.repository, build_dir.resolve() / place / "server")
    rows: list[dict[str, Any]] = []
    try:
        say(f"{place}: tritonserver pid {server.pid} on {server.config.grpc_url}")
        texts, labels = args.workload.texts, list(args.workload.labels)
        answers = served_results(server.config.grpc_url, texts, labels, 8)
        analyzer = PerfAnalyzer(
            binary=args.perf_binary,
            libraries=library_dir(build_dir / "perf-libs"),
            url=server.config.grpc_url,
            log_dir=args.out,
            headers=server.config.admin.grpc_metadata(),
        )
        for name, path in inputs.items():
            for concurrency in args.concurrency:
                args.gate.wait(f"{place}_{name}_c{concurrency}")
                level = analyzer.measure(MODEL, path, concurrency, PERF, tag=f"_{place}_{name}")
                say(f"{place} {name} c={concurrency}: {level.throughput:.1f} requests/s")
                rows.append(_row(place, name, level))
    finally:
        server.stop()
    entities = [[(e.start, e.end, e.label) for e in r.entities] for r in answers]
    return {"rows": rows, "entities": entities}


def _row(place: str, name: str, level: PerfLevel) -> dict[str, Any]:
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value / 1000, 2)

    return {
        "steps": place,
        "input": name,
        "concurrency": level.concurrency,
        "throughput": round(level.throughput, 2),
        "p50_ms": ms(level.p50_us),
        "p99_ms": ms(level.p99_us),
        "stable": level.stable,
        "csv_file": level.csv_file,
    }


def write_outputs(out: Path, record: dict[str, Any]) -> list[str]:
    """Write steps.json, steps.csv and (with matplotlib) steps.png; return their names."""
    write_json(out / "steps.json", record)
    rows = record["rows"]
    with (out / "steps.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    written = ["steps.json", "steps.csv"]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=120)
    cases = sorted({(r["input"], r["concurrency"]) for r in rows})
    width = 0.8 / len(STEP_PLACES)
    for n, place in enumerate(STEP_PLACES):
        values = {
            (r["input"], r["concurrency"]): r["throughput"] for r in rows if r["steps"] == place
        }
        xs = [i + n * width for i in range(len(cases))]
        axes.bar(xs, [values.get(case, 0.0) for case in cases], width, label=place)
    axes.set_xticks([i + width for i in range(len(cases))])
    axes.set_xticklabels([f"{name}\nc={c}" for name, c in cases])
    axes.set_ylabel("requests / s")
    axes.set_title(f"instruction_ner by steps place ({record['machine']})")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out / "steps.png")
    plt.close(figure)
    return [*written, "steps.png"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--build-dir", type=Path, default=Path("build/out/bench-steps"))
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument("--sentences", type=int, default=64, help="CoNLL-2003 test sentences")
    parser.add_argument("--document-sentences", type=int, default=20)
    parser.add_argument(
        "--concurrency",
        type=lambda text: tuple(int(c) for c in text.split(",")),
        default=(1, 8),
        help="comma-separated levels (default 1,8)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every place; exit 1 when a place's answers differ from embedded's."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.out = args.results / time.strftime("%Y%m%d-%H%M%S-steps", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    args.workload = load_workload(args.sentences, PromptTokenizer(), Limits())
    args.perf_binary = find_perf_analyzer()
    args.gate = QuietGate(CpuMonitor(), budget_s=60.0)
    size = args.document_sentences
    texts = args.workload.texts
    documents = [SEPARATOR.join(texts[i : i + size]) for i in range(0, len(texts) - size + 1, size)]
    inputs = {
        "sentence": write_json(args.out / "sentences.json", ensemble_input_data(args.workload)),
        f"document{size}": write_json(
            args.out / "documents.json", documents_input_data(documents, args.workload.labels)
        ),
    }
    places = {
        place: measure_place(place, args.model, args.build_dir, inputs, args)
        for place in STEP_PLACES
    }
    reference = places["embedded"]["entities"]
    equal = {place: record["entities"] == reference for place, record in places.items()}
    rows = [row for record in places.values() for row in record["rows"]]
    machine = machine_info()
    record = {
        "machine": f"{machine['cpu_model']}, {machine['usable_cpus']} usable cores",
        "machine_info": machine,
        "model": str(args.model),
        "sentences": args.sentences,
        "document_sentences": size,
        "answers_equal_to_embedded": equal,
        "rows": rows,
    }
    written = write_outputs(args.out, record)
    say(f"wrote {args.out}/: {', '.join(written)}")
    for row in rows:
        say(
            f"{row['steps']:>8} {row['input']:>10} c={row['concurrency']}: "
            f"{row['throughput']} requests/s, p99 {row['p99_ms']} ms"
        )
    say(f"answers equal to embedded's: {equal}")
    return 0 if all(equal.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
