"""Baseline 2: the PyPI ``instruction-ner`` package's own inference path on our checkpoint.

``instruction-ner`` 0.1.6 pins torch 1.13.1, transformers 4.27.1, tokenizers 0.13.2 and
pandas 1.4.3, which cannot live in the project's virtualenv (torch 2.13, transformers 4.57),
so it is never a dependency. Its inference path (``instruction_ner.model.Model``: slow
``T5Tokenizer``, ``T5ForConditionalGeneration.generate`` one text at a time, its own answer
formatter) imports nothing beyond torch and transformers, so the bench downloads the wheel
with pip into a git-ignored folder, unpacks it, and runs that path in a child process with the
project's torch and transformers (:mod:`bench.pypi_runner`). Everything that fails on the
way (no network, an import or load error) becomes a plainly reported reason.

Its prompt differs from the project's by construction: it encodes ``Sentence: ...`` and
``Instruction: ... Options: ...`` as a sentence pair, so an end token sits between them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from bench.paths import PathResult, Unavailable
from bench.quality import score_entities
from bench.workload import Workload
from instructner.method.prompts import NER_INSTRUCTION

PACKAGE = "instruction-ner"
VERSION = "0.1.6"
NAME = "instruction_ner_pypi_batch1"
TITLE = f"PyPI {PACKAGE} {VERSION} Model.predict, batch 1"


def fetch_package(vendor_dir: Path, timeout_s: float = 120.0) -> Path:
    """Download and unpack the wheel (no dependencies) once; return the folder to import from.

    Raises:
        RuntimeError: pip could not download it (the message holds pip's error).

    """
    target = vendor_dir / f"instruction_ner-{VERSION}"
    if (target / "instruction_ner" / "model.py").is_file():
        return target
    wheels = vendor_dir / "wheels"
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        f"{PACKAGE}=={VERSION}",
        "-d",
        str(wheels),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"pip download {PACKAGE}=={VERSION} ran over {timeout_s:.0f} s"
        ) from None
    found = sorted(wheels.glob(f"instruction_ner-{VERSION}-*.whl"))
    if done.returncode != 0 or not found:
        raise RuntimeError(
            f"pip download {PACKAGE}=={VERSION} failed (exit {done.returncode}): "
            + done.stderr.strip()[-800:]
        )
    with zipfile.ZipFile(found[0]) as wheel:
        wheel.extractall(target)
    return target


def run_package(
    checkpoint: Path, workload: Workload, vendor_dir: Path, work_dir: Path
) -> PathResult | Unavailable:
    """Run the package's batch-1 inference over the workload; say why if it cannot."""
    try:
        source = fetch_package(vendor_dir)
    except RuntimeError as error:
        return Unavailable(NAME, TITLE, str(error))
    request = {
        "source": str(source),
        "checkpoint": str(checkpoint.resolve()),
        "texts": workload.texts,
        "labels": list(workload.labels),
        "instruction": NER_INSTRUCTION,
        "max_new_tokens": workload.max_new_tokens,
        "eos_token_id": workload.end_id,
    }
    request_file = work_dir / "pypi_request.json"
    answer_file = work_dir / "pypi_answers.json"
    request_file.write_text(json.dumps(request), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bench.pypi_runner", str(request_file), str(answer_file)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    (work_dir / "pypi_runner.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0 or not answer_file.is_file():
        return Unavailable(
            NAME,
            TITLE,
            f"its inference path could not run on our checkpoint (exit {done.returncode}): "
            + done.stderr.strip()[-800:],
        )
    answers = json.loads(answer_file.read_text(encoding="utf-8"))
    predicted = [[(int(s), int(e), str(label)) for s, e, label in row] for row in answers["spans"]]
    return PathResult(
        name=NAME,
        title=TITLE,
        batch_size=1,
        sentences=len(workload.texts),
        seconds=float(answers["seconds"]),
        output_tokens=[int(n) for n in answers["output_tokens"]],
        quality=score_entities(workload.sentences, predicted, workload.verbalizer),
        latencies_s=[float(x) for x in answers["latencies_s"]],
        notes=(
            "its own prompt (sentence pair: one more end token than ours), tokenizer (slow "
            "sentencepiece) and answer formatter; run with this venv's torch/transformers, "
            f"not its pins; {answers['threads']} torch threads"
        ),
    )
