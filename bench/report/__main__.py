"""``python -m bench.report DIR [--publish OUT]``: print or publish a run's markdown table."""

import sys

from bench.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
