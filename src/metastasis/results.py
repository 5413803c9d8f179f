"""A finished run as Python objects: ``run.json`` and the four tables as pandas DataFrames.

This is the I/O edge of the analysis layer: :func:`load` checks the directory once and the tables are
read on first use (the ``exams`` table of a large run is big, and most questions do not need it).
Dictionary-encoded string columns come back as plain strings (``object``), so that hand-built tables
and tables read from disk behave the same in every analysis function.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds

from metastasis.errors import InputError

TABLE_NAMES: tuple[str, ...] = ("patients", "lesions", "exams", "events")


def plain_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every categorical column converted to plain strings (in place; returned)."""
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(str)
    return frame


@dataclass(eq=False)
class Run:
    """A finished run of ``metastasis simulate``.

    Attributes
    ----------
    directory:
        The run directory.
    info:
        The parsed ``run.json`` (resolved scenario, parameter values, seed, version, row counts).
    """

    directory: Path
    info: dict[str, Any]
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def scenario(self) -> dict[str, Any]:
        """The scenario as resolved for this run (the TOML tables as nested dicts)."""
        scenario: dict[str, Any] = self.info["scenario"]
        return scenario

    @property
    def name(self) -> str:
        """The scenario name."""
        return str(self.scenario.get("name", self.directory.name))

    @property
    def staging_window_days(self) -> float:
        """Days after diagnosis within which a distant finding still counts as found at diagnosis."""
        return float(self.scenario["staging"]["window_days"])

    @property
    def parameters(self) -> dict[str, float]:
        """Every model parameter value of the run, by dotted name."""
        params: dict[str, float] = self.info.get("parameters", {})
        return params

    def table(self, name: str) -> pd.DataFrame:
        """One of ``patients``, ``lesions``, ``exams``, ``events`` (read once, then cached)."""
        if name not in TABLE_NAMES:
            raise InputError("table", f"must be one of {', '.join(TABLE_NAMES)} (got {name!r})")
        if name not in self._cache:
            self._cache[name] = plain_strings(pd.read_parquet(self.directory / name))
        return self._cache[name]

    def table_for(self, name: str, patient_ids: Iterable[int]) -> pd.DataFrame:
        """The rows of one table for some patients only, read with a filter (cheap on large runs)."""
        if name in self._cache:
            frame = self._cache[name]
            return frame[frame["patient_id"].isin(list(patient_ids))].reset_index(drop=True)
        ids = [int(i) for i in patient_ids]
        dataset = ds.dataset(self.directory / name, format="parquet")
        arrow = dataset.to_table(filter=ds.field("patient_id").isin(ids))
        return plain_strings(arrow.to_pandas()).sort_values(["patient_id"], kind="stable").reset_index(drop=True)

    def columns(self, name: str, columns: Iterable[str]) -> pd.DataFrame:
        """Some columns of a table, string columns kept as pandas categoricals (compact: for counting over
        a large table such as ``events``); read each time, not cached."""
        if name not in TABLE_NAMES:
            raise InputError("table", f"must be one of {', '.join(TABLE_NAMES)} (got {name!r})")
        return pd.read_parquet(self.directory / name, columns=list(columns))

    @property
    def patients(self) -> pd.DataFrame:
        """One row per patient (SPEC ``patients``)."""
        return self.table("patients")

    @property
    def lesions(self) -> pd.DataFrame:
        """One row per lesion that reached 1 mm (SPEC ``lesions``)."""
        return self.table("lesions")

    @property
    def exams(self) -> pd.DataFrame:
        """One row per exam and organ it covers (SPEC ``exams``); large: prefer :meth:`table_for`."""
        return self.table("exams")

    @property
    def events(self) -> pd.DataFrame:
        """Diagnosis, detections, symptoms, treatments, death (SPEC ``events``)."""
        return self.table("events")

    def __repr__(self) -> str:
        return f"Run({str(self.directory)!r}, scenario={self.name!r}, patients={self.info.get('patients')})"


def load(directory: str | os.PathLike[str], field_name: str = "DIR") -> Run:
    """Open a finished run; tables are read on first use.

    Parameters
    ----------
    directory:
        A directory written by ``metastasis simulate``.
    field_name:
        The name used in the error when the directory holds no finished run (``DIR``, ``DIR_A``, ...).

    Raises
    ------
    InputError
        When ``directory`` holds no ``run.json`` or an unfinished run.
    """
    path = Path(directory)
    run_json = path / "run.json"
    if not run_json.is_file():
        raise InputError(field_name, f"{path} holds no run (no run.json)")
    try:
        info = json.loads(run_json.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(field_name, f"{run_json} is not valid JSON ({err})") from err
    if info.get("status") != "complete":
        raise InputError(field_name, f"{path} holds an unfinished run (finish it with simulate --resume)")
    if "scenario" not in info or not all((path / t).is_dir() for t in TABLE_NAMES):
        raise InputError(field_name, f"{path} does not hold the four tables of a run")
    return Run(path, info)
