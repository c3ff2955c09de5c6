"""Run the three tasks concurrently on one sentence with the asyncio client.

Usage: python async_ner.py [--url localhost:8001]
"""

import argparse
import asyncio
import sys

from instructner_client import AsyncInstructNERClient, InstructNERError

TEXT = "EU rejects German call to boycott British lamb ."
LABELS = ["organization", "person", "location", "miscellaneous"]


async def run(url: str) -> None:
    """Send ner, extract and type at once and print what each found."""
    async with AsyncInstructNERClient(url, timeout=10.0) as client:
        ner, spans, typed = await asyncio.gather(
            client.ner(TEXT, labels=LABELS),
            client.extract(TEXT),
            client.type(TEXT, entities=["EU", "German", "British"], labels=LABELS),
        )
    for task, entities in (("ner", ner), ("extract", spans), ("type", typed)):
        found = ", ".join(f"{e.text} ({e.label})" if e.label else e.text for e in entities)
        sys.stdout.write(f"{task:<8} {found or '(none)'}\n")


def main() -> int:
    """Parse the arguments and run the calls."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="localhost:8001")
    args = parser.parse_args()
    try:
        asyncio.run(run(args.url))
    except InstructNERError as error:
        sys.stderr.write(f"{type(error).__name__}: {error}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
