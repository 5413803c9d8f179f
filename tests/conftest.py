"""Shared fixtures: small finished runs of built-in scenarios, simulated once per test session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from metastasis.runner import RunRequest, run
from metastasis.scenario import load_scenario


def simulate(tmp: Path, scenario: str, patients: int, batch_size: int = 25_000, overrides: tuple[str, ...] = (),
             **kw: object) -> Path:
    out = tmp / f"{scenario}-{patients}-{batch_size}-{abs(hash(overrides))}"
    run(RunRequest(load_scenario(scenario, overrides), patients, out, batch_size, quiet=True, **kw))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 patients of the default scenario."""
    return simulate(tmp_path_factory.mktemp("runs"), "default", 3000)


@pytest.fixture(scope="session")
def intensive_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 patients of the intensive follow-up scenario (clinic visits with CT and bone scans)."""
    return simulate(tmp_path_factory.mktemp("runs"), "followup-intensive", 3000)


def read_table(directory: Path, name: str) -> pd.DataFrame:
    """A table of a run with its categorical columns as plain strings."""
    frame = pd.read_parquet(directory / name)
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(str)
    return frame
