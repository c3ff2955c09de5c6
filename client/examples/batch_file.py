"""NER over a text file (one text per line), written as JSON lines in input order.

Usage: python batch_file.py INPUT.txt OUTPUT.jsonl --labels person,location [--url ...]

Blank lines are skipped; a line the server rejects is written with its error instead of
entities, and the exit code is 1 when any line failed.
"""

import argparse
import json
import sys
from pathlib import Path

from instructner_client import InstructNERClient, InstructNERError


def main() -> int:
    """Read the file, send the lines concurrently and write one JSON object per line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--labels", required=True, help="comma-separated label words")
    parser.add_argument("--url", default="localhost:8001")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    lines = args.input.read_text(encoding="utf-8").splitlines()
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    labels = [label.strip() for label in args.labels.split(",")]
    with InstructNERClient(args.url, timeout=30.0, max_concurrency=args.concurrency) as client:
        results = client.ner_batch(
            [line for _, line in numbered], labels=labels, return_exceptions=True
        )
    failed = 0
    with args.output.open("w", encoding="utf-8") as out:
        for (number, line), result in zip(numbered, results, strict=True):
            record: dict[str, object] = {"line": number, "text": line}
            if isinstance(result, InstructNERError):
                failed += 1
                record["error"] = str(result)
            else:
                record["entities"] = [entity.to_dict() for entity in result]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stderr.write(f"{len(numbered) - failed} of {len(numbered)} lines done -> {args.output}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
