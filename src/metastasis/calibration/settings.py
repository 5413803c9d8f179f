"""The simulated settings the published figures come from, simulated in-process and shared between targets.

A :class:`Setting` is a built-in scenario with ``--set`` overrides and a share of the patient count: the
``default`` population, the ER+ cohort of Pan et al. 2017, the two EBCTCG arms, breast-conserving therapy
with margins all clear and all positive, and the two arms of the GBSG2 trial. :class:`Simulations`
simulates each setting once per parameter set (no files; ``runner.simulate_candidates`` batch by batch)
and keeps its ``patients`` and ``lesions`` tables for every target that needs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from metastasis import parameters
from metastasis.errors import InputError
from metastasis.results import plain_strings
from metastasis.runner import MAX_CANDIDATES_PER_PATIENT, simulate_candidates, through_patient
from metastasis.scenario import Scenario, load_scenario

#: Candidates simulated per call of the engine at most (bounds memory: the exams table is large).
MAX_BATCH = 25_000

_EARLY = 'cohort.clinical_stages=["I", "II", "III"]'


@dataclass(frozen=True)
class Setting:
    """A scenario and its overrides; ``share`` of the requested patient count is simulated."""

    name: str
    scenario: str
    overrides: tuple[str, ...]
    share: float
    what: str

    def load(self, seed: int | None = None, extra: tuple[str, ...] = ()) -> Scenario:
        """The scenario with this setting's overrides, then ``extra`` ones and ``seed``."""
        return load_scenario(self.scenario, (*self.overrides, *extra, *(() if seed is None else (f"seed={seed}",))))


def _margin(share: float) -> Setting:
    return Setting(
        f"bcs-margin-{share:g}", "default",
        (_EARLY, "treatment.early.breast_conserving_share=1.0", f"treatment.early.positive_margin_share={share}",
         "horizon_years=7.5"),
        0.5, f"default care, breast-conserving surgery and radiotherapy for all stage I-III, margins "
             f"{'all positive' if share else 'all clear'}")


# A setting's horizon is the scenario's (20 years) unless its figures end sooner: it then stops a year or
# so after its last figure (EBCTCG at 15 years, Houssami at 79 months), which leaves them unchanged (each
# woman's course up to a day does not depend on the horizon) and saves the steps beyond.

#: Every setting but the GBSG2 arms (those are built from the data set, see :mod:`.gbsg2`).
SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("default", "default", (), 1.0, "the default population, real-world staging and care"),
    Setting("er-positive", "default",
            (_EARLY, 'cohort.subtypes=["luminal_a", "luminal_b", "luminal_her2"]', 'cohort.t_stages=["T1", "T2"]',
             "cohort.nodes_positive_max=9", "treatment.early.endocrine_years=5"),
            1.0, "ER+ T1-2 N0-9 stage I-III, five years of endocrine therapy (Pan et al. 2017)"),
    Setting("ebctcg-bcs-rt", "ebctcg-bcs-rt", ("horizon_years=16",), 0.5, "EBCTCG 2011 arm with radiotherapy"),
    Setting("ebctcg-bcs-no-rt", "ebctcg-bcs-no-rt", ("horizon_years=16",), 0.5,
            "EBCTCG 2011 arm without radiotherapy"),
    _margin(0.0),
    _margin(1.0),
)}


@dataclass
class Simulated:
    """One simulated setting: its scenario, the parameter values and two tables as plain-string frames."""

    scenario: Scenario
    values: dict[str, float]
    patients: pd.DataFrame
    lesions: pd.DataFrame

    @property
    def window_days(self) -> float:
        return float(self.scenario.staging.window_days)


def simulate_eligible(scenario: Scenario, values: dict[str, float], patients: int) -> Simulated:
    """The first ``patients`` eligible candidates of ``scenario`` (as ``simulate`` keeps them), in memory.

    Candidates are simulated in consecutive ranges sized by the eligible share seen so far, so the
    patients are those of ``metastasis simulate --patients N`` whatever the ranges (each candidate's
    course depends on its own random streams only). Only ``patients`` and ``lesions`` are kept.
    """
    if patients < 1:
        raise InputError("--patients", f"must be at least 1 (got {patients})")
    kept: dict[str, list[pa.Table]] = {"patients": [], "lesions": []}
    done = first = 0
    while done < patients:
        rate = done / first if first else 1.0
        count = min(MAX_BATCH, max(64, math.ceil(1.1 * (patients - done) / max(rate, 1e-3))))
        tables = simulate_candidates(scenario, values, first, count)
        first += count
        ids = tables["patients"]["patient_id"].to_numpy()
        need = patients - done
        if len(ids) > need:
            last = int(ids[need - 1])
            tables = through_patient(tables, last)
        for name in kept:
            kept[name].append(tables[name])
        done += tables["patients"].num_rows
        if done < patients and first >= MAX_CANDIDATES_PER_PATIENT * patients:
            raise InputError("cohort", f"only {done} eligible patients among the first {first:,} candidates")
    frames = {k: plain_strings(pa.concat_tables(v).to_pandas()) for k, v in kept.items()}
    return Simulated(scenario, values, frames["patients"], frames["lesions"])


def parameter_values(scenario: Scenario, overrides: Mapping[str, float]) -> dict[str, float]:
    """The scenario's parameter values with ``overrides`` (checked against the registry's ranges)."""
    values = scenario.parameter_values()
    resolved = parameters.resolve(dict(overrides))
    values.update({name: resolved[name] for name in overrides})
    return values


@dataclass
class Simulations:
    """Each setting simulated once for one parameter set (``overrides`` of the registry defaults).

    ``patients`` is the count the settings' shares apply to; ``extra`` holds settings defined elsewhere
    (the GBSG2 arms); ``seed`` replaces the scenarios' seeds and ``scenario_overrides`` (``--set`` items)
    apply to every setting. ``on_simulate`` is called with each setting's name before it is simulated.
    """

    overrides: Mapping[str, float]
    patients: int
    extra: Mapping[str, Setting] = field(default_factory=dict)
    on_simulate: Callable[[str], None] | None = None
    seed: int | None = None
    scenario_overrides: tuple[str, ...] = ()
    _cache: dict[str, Simulated] = field(default_factory=dict, repr=False)

    def setting(self, name: str) -> Setting:
        return {**SETTINGS, **self.extra}[name]

    def count(self, name: str) -> int:
        return max(1, round(self.setting(name).share * self.patients))

    def get(self, name: str) -> Simulated:
        if name not in self._cache:
            if self.on_simulate is not None:
                self.on_simulate(name)
            setting = self.setting(name)
            scenario = setting.load(self.seed, self.scenario_overrides)
            self._cache[name] = simulate_eligible(scenario, parameter_values(scenario, self.overrides),
                                                  self.count(name))
        return self._cache[name]


def kaplan_meier_at(duration: np.ndarray, event: np.ndarray, t: float,
                    weights: np.ndarray | None = None) -> tuple[float, float]:
    """Kaplan-Meier survival at time ``t`` and its Greenwood standard error (NaN, NaN with no one at risk).

    With ``weights`` (one per patient, case weights) events and numbers at risk are sums of weights, and
    Greenwood's formula takes those sums as counts (as R's ``survfit`` does with case weights): integer
    weights give the estimate of the data set in which each patient is repeated that many times.
    """
    d = np.asarray(duration, dtype=np.float64)
    e = np.asarray(event, dtype=bool)
    if len(d) == 0:
        return float("nan"), float("nan")
    times = np.unique(d[e & (d <= t)])
    if len(times) == 0:
        return 1.0, 0.0
    hit = e & (d <= t)
    if weights is None:
        deaths = np.bincount(np.searchsorted(times, d[hit]), minlength=len(times))
        at_risk = len(d) - np.searchsorted(np.sort(d), times, side="left")
    else:
        w = np.asarray(weights, dtype=np.float64)
        deaths = np.bincount(np.searchsorted(times, d[hit]), weights=w[hit], minlength=len(times))
        order = np.argsort(d, kind="stable")
        from_here = np.concatenate((np.cumsum(w[order][::-1])[::-1], [0.0]))  # weight with duration >= each
        at_risk = from_here[np.searchsorted(d[order], times, side="left")]
    surv = float(np.prod(1.0 - deaths / at_risk))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = deaths / (at_risk * (at_risk - deaths))
    var = surv**2 * float(np.sum(np.where(at_risk > deaths, terms, 0.0)))
    return surv, math.sqrt(var)
