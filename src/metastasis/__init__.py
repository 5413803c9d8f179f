"""metastasis: simulate how breast cancer spreads and how the care pathway sees and changes that spread.

Research and teaching software, not a medical device.

``metastasis.load(DIR)`` opens a finished run (see :mod:`metastasis.results`); the questions asked of it
live in :mod:`metastasis.analysis`, :mod:`metastasis.survival` and :mod:`metastasis.markov`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metastasis.results import Run

__version__ = "0.1.0"
__all__ = ["__version__", "load"]


def load(directory: str | os.PathLike[str]) -> Run:
    """Open the finished run in ``directory``: ``run.scenario``, ``run.patients``, ``run.lesions``,
    ``run.exams``, ``run.events`` (pandas DataFrames, read on first use). Imported lazily so that the
    command line starts fast."""
    from metastasis.results import load as _load

    return _load(directory)
