"""The NER corpora folder the data tests read: ``$INSTRUCTNER_DATA_ROOT`` or ``../shared/data/ner``.

A missing folder is the one prerequisite a test may skip on, always with :data:`MISSING`.
"""

from __future__ import annotations

import pytest

from instructner.research.data import DATA_ROOT_ENV, default_data_root

DATA_ROOT = default_data_root()
MISSING = f"the NER data folder {DATA_ROOT} is missing (set {DATA_ROOT_ENV} to where it is)"
needs_data = pytest.mark.skipif(not DATA_ROOT.is_dir(), reason=MISSING)
