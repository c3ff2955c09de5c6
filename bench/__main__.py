"""Entry point: ``python -m bench [--smoke]`` (see :mod:`bench.run`)."""

import sys

from bench.run import main

sys.exit(main())
