"""Child process of :mod:`bench.pypi_package`: time ``instruction_ner.model.Model.predict``.

Run: ``python -m bench.pypi_runner REQUEST.json ANSWERS.json``. The unpacked wheel comes first
on ``sys.path``; the rest (torch, transformers, sentencepiece) is this virtualenv's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    """Answer every text with the package's batch-1 ``predict``; write answers and timings."""
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sys.path.insert(0, request["source"])
    import torch
    from instruction_ner.model import Model

    model = Model(request["checkpoint"], request["checkpoint"])
    generated_lengths: list[int] = []
    generate = model.model.generate

    def counting_generate(*args: Any, **kwargs: Any) -> Any:
        # Count generated tokens without changing the call (row 0 is the decoder start).
        output = generate(*args, **kwargs)
        row = output[0].tolist()[1:]
        end = request["eos_token_id"]
        generated_lengths.append(row.index(end) if end in row else len(row))
        return output

    model.model.generate = counting_generate
    kwargs = {"max_new_tokens": request["max_new_tokens"], "num_beams": 1, "do_sample": False}
    options = request["labels"]
    model.predict(request["texts"][0], kwargs, request["instruction"], options)  # warm-up
    generated_lengths.clear()
    answers, spans, latencies = [], [], []
    started = time.perf_counter()
    for text in request["texts"]:
        call = time.perf_counter()
        answer, answer_spans = model.predict(text, kwargs, request["instruction"], options)
        latencies.append(time.perf_counter() - call)
        answers.append(answer)
        spans.append([list(span) for span in answer_spans])
    seconds = time.perf_counter() - started
    result = {
        "answers": answers,
        "spans": spans,
        "output_tokens": generated_lengths,
        "latencies_s": latencies,
        "seconds": seconds,
        "threads": torch.get_num_threads(),
    }
    Path(argv[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
