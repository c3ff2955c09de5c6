"""Find typed entities in one sentence with the blocking client.

Usage: python sync_ner.py [--url localhost:8001]
"""

import argparse
import sys

from instructner_client import InstructNERClient, InstructNERError


def main() -> int:
    """Run one NER call and print the entities."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="localhost:8001")
    args = parser.parse_args()
    text = "Angela Merkel met Emmanuel Macron in Paris ."
    try:
        with InstructNERClient(args.url, timeout=10.0) as client:
            if not client.is_ready():
                sys.stderr.write(f"the model is not ready at {args.url}\n")
                return 1
            entities = client.ner(text, labels=["person", "location", "organization"])
    except InstructNERError as error:
        sys.stderr.write(f"{type(error).__name__}: {error}\n")
        return 1
    for entity in entities:
        sys.stdout.write(f"{entity.start:>3}-{entity.end:<3} {entity.label:<12} {entity.text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
