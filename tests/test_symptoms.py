"""Symptoms: nobody is diagnosed after her distant symptoms would have brought her to care, and after
diagnosis every pending presentation is found at its step."""

from __future__ import annotations

import numpy as np
import pytest

from metastasis.biology import natural_history as nh
from metastasis.cohort import Patients, draw_patients
from metastasis.detection import symptoms
from metastasis.scenario import load_scenario


def _first_presentation_days(patients: Patients, values: dict[str, float], seed: int) -> np.ndarray:
    """Per patient, the earliest day distant symptoms bring her to care (inf if none before day 0)."""
    hist, lesions = nh.start(patients, values, seed)
    nh.seed_until(hist, lesions, np.zeros(len(patients)))
    onset = symptoms.onsets_before_diagnosis(hist, lesions, values)
    p, o = np.nonzero(~np.isnan(onset))
    first = np.full(len(patients), np.inf)
    np.minimum.at(first, p, onset[p, o] + symptoms.presentation_delay_days(seed, patients.patient_id[p], o, values))
    return first


def test_diagnosis_comes_no_later_than_presentation_with_distant_symptoms() -> None:
    scenario = load_scenario("default")
    values = scenario.parameter_values()
    drawn = draw_patients(scenario.cohort, values, scenario.seed, np.arange(20_000, dtype=np.int64))
    late = _first_presentation_days(drawn, values, scenario.seed) < -symptoms.PRESENTATION_MARGIN_DAYS
    assert late.sum() >= 20  # the drawn diameters leave some women presenting years before "diagnosis"

    moved = symptoms.diagnosis_by_symptoms(drawn, values, scenario.seed)
    assert not (_first_presentation_days(moved, values, scenario.seed) < -symptoms.PRESENTATION_MARGIN_DAYS).any()
    shrunk = moved.tumour_diameter_mm < drawn.tumour_diameter_mm
    assert np.all(moved.tumour_diameter_mm <= drawn.tumour_diameter_mm)
    assert np.array_equal(shrunk, late | shrunk) and shrunk[late].all()  # every late one moved, ...
    unchanged = ~shrunk
    assert np.array_equal(moved.tumour_diameter_mm[unchanged], drawn.tumour_diameter_mm[unchanged])
    for name in ("patient_id", "age_years", "subtype", "grade", "nodes_positive", "aggressiveness"):
        assert np.array_equal(getattr(moved, name), getattr(drawn, name))


def test_due_presentations_are_every_pending_pair_at_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The steps read only the patients whose earliest pending presentation day has come (a cached lower
    bound): at every step of a course the pairs they find are those of a full scan of all patients and
    organs, in the same order."""
    from metastasis import parameters, pathway
    from metastasis.care import PALLIATIVE, CareState
    from metastasis.engine import simulate_batch

    found = pathway._due_presentations
    calls = {"steps": 0, "pairs": 0}

    def checked(state: CareState, t1: float, dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        day = state.presentation
        pending = (day < t1) & ~state.presented & ~state.known & (state.mode != PALLIATIVE)[:, None]
        expected = np.nonzero(pending & (day < dead[:, None]))
        sp, so = found(state, t1, dead)
        np.testing.assert_array_equal(sp, expected[0])
        np.testing.assert_array_equal(so, expected[1])
        calls["steps"] += 1
        calls["pairs"] += sp.size
        return sp, so

    monkeypatch.setattr(pathway, "_due_presentations", checked)
    simulate_batch(load_scenario("default"), parameters.resolve({}), np.arange(5000))
    assert calls["steps"] > 200 and calls["pairs"] > 50
