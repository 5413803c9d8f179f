"""Analysis, survival and the site-transition chain on small hand-built tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from metastasis import analysis, markov, survival

NAN = float("nan")


def _patients(rows: list[dict[str, object]]) -> pd.DataFrame:
    base: dict[str, object] = {
        "age_years": 55.0, "subtype": "luminal_a", "grade": 2, "tumour_diameter_mm": 15.0, "nodes_positive": 0,
        "t_stage": "T1", "n_stage": "N0", "clinical_stage": "I", "true_stage": "I", "occult_distant": False,
        "micrometastatic_distant": False, "aggressiveness": 1.0, "distant_symptom_days": NAN, "death_days": NAN,
        "death_cause": "", "lethal_origin": "", "followup_end_days": 7305.0,
    }
    return pd.DataFrame([{**base, **r} for r in rows])


def _lesions(rows: list[dict[str, object]]) -> pd.DataFrame:
    base: dict[str, object] = {
        "lesion_id": 1, "origin": "seeded", "parent_lesion_id": 0, "seeded_days": -100.0, "dormant_until_days": NAN,
        "growth_rate_per_day": 0.01, "detectable_days": NAN, "detected_days": NAN, "detected_by": "",
        "diameter_at_detection_mm": NAN, "ended_days": NAN, "end_reason": "horizon",
    }
    return pd.DataFrame([{**base, **r} for r in rows])


# --- the site-transition chain ---------------------------------------------------------------------------

@pytest.fixture()
def chain_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    patients = _patients([
        {"patient_id": 1, "death_days": 900.0, "death_cause": "breast_cancer"},
        {"patient_id": 2},
        {"patient_id": 3, "death_days": 700.0, "death_cause": "other"},
        {"patient_id": 4},
        {"patient_id": 5, "death_days": 60.0, "death_cause": "treatment"},
    ])
    lesions = _lesions([
        # patient 1: bone and lung found the same day, lung larger -> lung first; bone's later lesion ignored
        {"patient_id": 1, "organ": "bone", "detected_days": 100.0, "diameter_at_detection_mm": 10.0},
        {"patient_id": 1, "organ": "lung", "detected_days": 100.0, "diameter_at_detection_mm": 20.0},
        {"patient_id": 1, "organ": "liver", "detected_days": 300.0, "diameter_at_detection_mm": 8.0},
        {"patient_id": 1, "organ": "bone", "detected_days": 400.0, "diameter_at_detection_mm": 30.0},
        {"patient_id": 2, "organ": "bone", "detected_days": 200.0, "diameter_at_detection_mm": 9.0},
        {"patient_id": 3, "organ": "bone", "detected_days": 80.0, "diameter_at_detection_mm": 9.0},
        {"patient_id": 3, "organ": "liver", "detected_days": 50.0, "diameter_at_detection_mm": 12.0},
        {"patient_id": 4, "organ": "lung"},  # never found: not in the chain
        {"patient_id": 5, "organ": "breast", "detected_days": 5.0, "diameter_at_detection_mm": 9.0},
        {"patient_id": 5, "organ": "brain", "detected_days": 10.0, "diameter_at_detection_mm": 9.0},
    ])
    return patients, lesions


def test_site_sequences_order_ties_by_diameter_and_absorb(chain_tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    seq = markov.site_sequences(*chain_tables)
    by_patient = {pid: list(g["organ"]) for pid, g in seq.groupby("patient_id")}
    assert by_patient == {1: ["lung", "bone", "liver"], 2: ["bone"], 3: ["liver", "bone"], 5: ["brain"]}
    last = seq.groupby("patient_id")["next_state"].last().to_dict()
    assert last == {1: "death", 2: "end", 3: "end", 5: "death"}
    assert list(seq.loc[seq["patient_id"] == 1, "step"]) == [0, 1, 2]


def test_transition_counts_probabilities_and_first_sites(chain_tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    chain = markov.site_chain(*chain_tables)
    c = chain.counts
    assert c.loc["lung", "bone"] == 1 and c.loc["bone", "liver"] == 1 and c.loc["liver", "death"] == 1
    assert c.loc["liver", "bone"] == 1 and c.loc["bone", "end"] == 2 and c.loc["brain", "death"] == 1
    assert int(c.to_numpy().sum()) == 7  # one transition per organ of each sequence
    assert chain.probabilities.loc["bone", "liver"] == pytest.approx(1 / 3)
    assert chain.probabilities.loc["bone", "end"] == pytest.approx(2 / 3)
    assert chain.probabilities.loc["other"].isna().all()
    assert chain.first_site["patients"].to_dict() == {
        "bone": 1, "lung": 1, "liver": 1, "brain": 1, "distant_nodes": 0, "other": 0}
    assert chain.first_site["share"].sum() == pytest.approx(1.0)


def test_organ_roles_spread_absorb_few() -> None:
    counts = pd.DataFrame(0, index=pd.Index(["bone", "liver", "brain"], name="from"), columns=list(markov.STATES))
    counts.loc["bone", ["lung", "death"]] = [8, 2]
    counts.loc["liver", ["lung", "death", "end"]] = [1, 6, 3]
    counts.loc["brain", "death"] = 3
    roles = markov.organ_roles(counts)
    assert roles.loc["bone", "spread_share"] == pytest.approx(0.8) and roles.loc["bone", "role"] == "spreads"
    assert roles.loc["liver", "death_share"] == pytest.approx(0.6) and roles.loc["liver", "role"] == "absorbs"
    assert roles.loc["brain", "role"] == "few"


# --- descriptive questions -------------------------------------------------------------------------------

def test_occult_by_organ_shares() -> None:
    patients = _patients([
        {"patient_id": 1, "clinical_stage": "II"},
        {"patient_id": 2, "clinical_stage": "IV"},
        {"patient_id": 3},
        {"patient_id": 4},
    ])
    lesions = _lesions([
        {"patient_id": 1, "organ": "bone", "seeded_days": -400.0, "detectable_days": -30.0},  # occult
        {"patient_id": 1, "organ": "lung", "seeded_days": -10.0, "detectable_days": 200.0},  # there, tiny
        {"patient_id": 2, "organ": "liver", "seeded_days": -400.0, "detectable_days": -100.0},  # stage IV: out
        {"patient_id": 3, "organ": "lung", "seeded_days": -300.0, "detectable_days": -5.0, "ended_days": -1.0},
        {"patient_id": 3, "organ": "brain", "seeded_days": 50.0, "detectable_days": 400.0},  # seeded later
        {"patient_id": 3, "organ": "regional_nodes", "seeded_days": -50.0, "detectable_days": -20.0},  # not distant
    ])
    o = analysis.occult_by_organ(patients, lesions)
    assert (o["denominator"] == 3).all()
    assert o.loc["bone", "occult_patients"] == 1 and o.loc["bone", "occult_share"] == pytest.approx(1 / 3)
    assert o.loc["lung", "occult_patients"] == 0 and o.loc["lung", "seeded_share"] == pytest.approx(1 / 3)
    assert o.loc["liver", "occult_patients"] == 0 and o.loc["brain", "seeded_patients"] == 0
    assert o.loc["any", "occult_patients"] == 1 and o.loc["any", "seeded_patients"] == 1


@pytest.fixture()
def relapse_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    patients = _patients([
        {"patient_id": 1, "clinical_stage": "II", "distant_symptom_days": 700.0, "death_days": 2000.0,
         "death_cause": "breast_cancer", "followup_end_days": 2000.0},
        {"patient_id": 2, "distant_symptom_days": 1000.0},
        {"patient_id": 3, "clinical_stage": "III", "death_days": 800.0, "death_cause": "other",
         "followup_end_days": 800.0},
        {"patient_id": 4, "clinical_stage": "IV", "death_days": 300.0, "death_cause": "breast_cancer",
         "followup_end_days": 300.0},
        {"patient_id": 5},
        {"patient_id": 6, "death_days": 900.0, "death_cause": "other", "followup_end_days": 900.0},
    ])
    lesions = _lesions([
        {"patient_id": 1, "organ": "bone", "detected_days": 60.0, "diameter_at_detection_mm": 5.0,
         "detected_by": "bone_scan"},  # inside the 90-day staging window: not a recurrence
        {"patient_id": 1, "organ": "lung", "detected_days": 500.0, "diameter_at_detection_mm": 12.0,
         "detected_by": "ct"},
        {"patient_id": 2, "organ": "liver", "detected_days": 1000.0, "diameter_at_detection_mm": 30.0,
         "detected_by": "symptoms"},
        {"patient_id": 3, "organ": "brain", "detected_days": 300.0, "diameter_at_detection_mm": 9.0,
         "detected_by": "mri_brain"},
        {"patient_id": 4, "organ": "bone", "detected_days": 0.0, "diameter_at_detection_mm": 20.0,
         "detected_by": "ct"},
    ])
    return patients, lesions


def test_distant_recurrences_and_lead_time(relapse_tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    rec = analysis.distant_recurrences(*relapse_tables, window_days=90.0).set_index("patient_id")
    assert list(rec.index) == [1, 2, 3, 5, 6]  # stage IV excluded
    assert rec.loc[1, "first_distant_days"] == 500.0 and rec.loc[1, "first_distant_site"] == "lung"
    assert rec["relapse"].to_dict() == {1: True, 2: True, 3: True, 5: False, 6: False}
    leads = analysis.lead_times(rec.reset_index()).set_index("patient_id")
    assert leads.loc[1, "lead_time_days"] == 200.0
    assert leads.loc[2, "lead_time_days"] == 0.0
    assert math.isnan(leads.loc[3, "lead_time_days"]) and not leads.loc[3, "symptoms_expected"]
    s = analysis.lead_time_summary(leads.reset_index())
    assert s.loc["all", "recurrences"] == 3 and s.loc["all", "with_counterfactual"] == 2
    assert s.loc["all", "mean_days"] == pytest.approx(100.0) and s.loc["all", "share_before_symptoms"] == 0.5
    assert s.loc["ct", "median_days"] == 200.0 and s.loc["symptoms", "share_before_symptoms"] == 0.0
    assert math.isnan(s.loc["mri_brain", "mean_days"])


def test_survival_builders(relapse_tables: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    patients, lesions = relapse_tables
    ttr = survival.time_to_distant_relapse(patients, lesions, 90.0).set_index("patient_id")
    assert ttr["duration_days"].to_dict() == {1: 500.0, 2: 1000.0, 3: 300.0, 5: 7305.0, 6: 900.0}
    assert ttr["event"].to_dict() == {1: True, 2: True, 3: True, 5: False, 6: False}
    drfs = survival.distant_relapse_free_survival(patients, lesions, 90.0).set_index("patient_id")
    assert drfs.loc[6, "duration_days"] == 900.0 and drfs.loc[6, "event"]  # death counts
    assert not drfs.loc[5, "event"]
    os_ = survival.overall_survival(patients, cause="breast_cancer").set_index("patient_id")
    assert os_.loc[3, "duration_days"] == 800.0 and not os_.loc[3, "event"] and os_.loc[4, "event"]
    after = survival.survival_after_distant(patients, lesions, 90.0).set_index("patient_id")
    assert after.loc[1, "setting"] == "de_novo"  # first distant finding inside the window (bone, day 60)
    assert after.loc[1, "duration_days"] == 2000.0 - 60.0 and after.loc[1, "first_distant_site"] == "bone"
    assert after.loc[2, "setting"] == "recurrence" and after.loc[4, "duration_days"] == 300.0


def test_stage_shift_patterns_involvement_and_lethal_origin() -> None:
    patients = _patients([
        {"patient_id": 1, "clinical_stage": "II", "true_stage": "IV", "death_days": 500.0,
         "death_cause": "breast_cancer", "lethal_origin": "present_at_diagnosis"},
        {"patient_id": 2, "clinical_stage": "II", "true_stage": "II", "death_days": 900.0,
         "death_cause": "breast_cancer", "lethal_origin": "seeded_later"},
        {"patient_id": 3, "clinical_stage": "IV", "true_stage": "IV", "death_days": 100.0,
         "death_cause": "breast_cancer", "lethal_origin": "present_at_diagnosis"},
        {"patient_id": 4, "death_days": 300.0, "death_cause": "other"},
    ])
    shift = analysis.stage_shift(patients)
    assert shift.loc["II", "IV"] == 1 and shift.loc["II", "II"] == 1 and shift.loc["I", "I"] == 1
    assert int(shift.to_numpy().sum()) == 4 and list(shift.columns) == ["I", "II", "III", "IV"]
    dist = analysis.stage_distribution(patients)
    assert dist.loc["IV", "clinical_share"] == 0.25 and dist.loc["IV", "true_share"] == 0.5

    d = analysis.deaths_by_lethal_origin(patients)
    assert d.loc["I-III", "breast_cancer_deaths"] == 2 and d.loc["I-III", "share_present_at_diagnosis"] == 0.5
    assert d.loc["all", "deaths"] == 4 and d.loc["all", "present_at_diagnosis"] == 2
    assert d.loc["IV", "share_present_at_diagnosis"] == 1.0 and math.isnan(d.loc["III", "share_present_at_diagnosis"])

    lesions = _lesions([
        {"patient_id": 1, "lesion_id": 0, "organ": "breast", "origin": "primary", "detected_days": 0.0},
        {"patient_id": 1, "organ": "lung", "detectable_days": 50.0, "detected_days": 100.0},
        {"patient_id": 1, "lesion_id": 2, "organ": "bone", "detectable_days": 60.0, "detected_days": 100.0},
        {"patient_id": 1, "lesion_id": 3, "organ": "liver", "detectable_days": 90.0, "detected_days": 300.0},
        {"patient_id": 2, "organ": "bone", "detectable_days": 10.0, "detected_days": 200.0},
        {"patient_id": 3, "organ": "bone", "detectable_days": 10.0},  # visible, never found
        {"patient_id": 4, "organ": "brain"},  # reached 1 mm only
    ])
    ever, first = analysis.organ_patterns(lesions, "ever"), analysis.organ_patterns(lesions, "first")
    assert ever["patients"].to_dict() == {"bone+lung+liver": 1, "bone": 1}
    assert first["patients"].to_dict() == {"bone+lung": 1, "bone": 1}
    assert ever["share"].sum() == pytest.approx(1.0)
    inv = analysis.organ_involvement(patients, lesions)
    assert inv.loc["bone", "reached"] == 3 and inv.loc["bone", "visible"] == 3 and inv.loc["bone", "found"] == 2
    assert inv.loc["brain", "reached"] == 1 and inv.loc["brain", "visible"] == 0
    assert inv.loc["breast", "reached"] == 0  # the primary itself is not counted
    assert inv.loc["bone", "reached_share"] == 0.75


def test_burden_at_first_finding_counts_the_work_up_and_what_was_there() -> None:
    end = {"ended_days": 5000.0}
    lesions = _lesions([
        {"patient_id": 1, "lesion_id": 0, "organ": "breast", "origin": "primary", "detected_days": 0.0, **end},
        {"patient_id": 1, "organ": "lung", "detectable_days": 50.0, "detected_days": 100.0, **end},
        {"patient_id": 1, "lesion_id": 2, "organ": "bone", "detectable_days": 60.0, "detected_days": 150.0, **end},
        {"patient_id": 1, "lesion_id": 3, "organ": "liver", "detectable_days": 90.0, "detected_days": 300.0, **end},
        {"patient_id": 1, "lesion_id": 4, "organ": "bone", "detectable_days": 80.0, **end},  # there, never found
        {"patient_id": 1, "lesion_id": 5, "organ": "lung", "detectable_days": 40.0, "ended_days": 90.0},  # gone
        {"patient_id": 1, "lesion_id": 6, "organ": "brain", "detectable_days": 120.0, **end},  # too late
        {"patient_id": 1, "lesion_id": 7, "organ": "liver", "detectable_days": 70.0, "ended_days": 100.0},  # that day
        *({"patient_id": 2, "lesion_id": k, "organ": "liver", "detectable_days": 10.0, "detected_days": 400.0,
           **end} for k in range(1, 8)),
        {"patient_id": 3, "organ": "bone", "detectable_days": 10.0, **end},  # never found: no row
    ])
    b = analysis.burden_at_first_finding(lesions, window_days=90.0)
    assert list(b.index) == [1, 2]
    assert b.loc[1, "first_distant_days"] == 100.0
    assert b.loc[1, "lesions_found"] == 2 and b.loc[1, "organs_found"] == 2  # the liver, at day 300, is later
    # lung, both bones, both livers (one resected that day); not the lung gone before or the brain to come
    assert b.loc[1, "lesions_present"] == 5
    assert b.loc[2, "lesions_found"] == 7 and b.loc[2, "organs_found"] == 1 and b.loc[2, "lesions_present"] == 7
    assert bool(b.loc[1, "oligometastatic"]) and not bool(b.loc[2, "oligometastatic"])


# --- Kaplan-Meier and Cox --------------------------------------------------------------------------------

def test_kaplan_meier_known_values_and_greenwood_band() -> None:
    frame = pd.DataFrame({"duration_days": [1.0, 2, 2, 3, 5, 8], "event": [True, True, False, True, False, True]})
    km = survival.kaplan_meier(frame).set_index("time_days")
    assert km.loc[1.0, "survival"] == pytest.approx(5 / 6)
    assert km.loc[2.0, "survival"] == pytest.approx(5 / 6 * 4 / 5)
    assert km.loc[3.0, "survival"] == pytest.approx(5 / 6 * 4 / 5 * 2 / 3)
    assert km.loc[8.0, "survival"] == 0.0
    assert km.loc[2.0, "at_risk"] == 5 and km.loc[5.0, "at_risk"] == 2
    # exponential Greenwood (log-log) band at t = 1 by hand
    s, var = 5 / 6, 1 / (6 * 5)
    se = math.sqrt(var) / abs(math.log(s))
    z = 1.959963984540054
    assert km.loc[1.0, "ci_lower"] == pytest.approx(s ** math.exp(z * se), rel=1e-6)
    assert km.loc[1.0, "ci_upper"] == pytest.approx(s ** math.exp(-z * se), rel=1e-6)
    summary = survival.kaplan_meier_summary(frame, landmarks_years=())
    assert summary.loc["all", "median_days"] == 3.0 and summary.loc["all", "events"] == 4
    grouped = survival.kaplan_meier(frame.assign(arm=["a", "a", "b", "b", "b", "b"]), "arm", timeline=[0.0, 4.0])
    assert set(grouped["group"]) == {"a", "b"} and len(grouped) == 4


def test_hazard_ratio_recovers_a_known_ratio() -> None:
    rng = np.random.default_rng(20240505)
    n = 3000
    cens = rng.uniform(0.0, 3.0, 2 * n)
    t = np.concatenate([rng.exponential(1.0, n), rng.exponential(0.5, n)])  # hazard 1 vs 2
    frames = [pd.DataFrame({"patient_id": np.arange(n) + k * n, "duration_days": np.minimum(t, cens)[k * n:(k + 1) * n],
                            "event": (t <= cens)[k * n:(k + 1) * n]}) for k in (0, 1)]
    hr = survival.hazard_ratio(frames[0], frames[1])
    assert hr["paired"] == 0.0
    assert hr["ci_lower"] < 2.0 < hr["ci_upper"] and hr["ci_lower"] > 1.5  # covers the truth, far from 1
    assert hr["p_value"] < 1e-10
    reverse = survival.hazard_ratio(frames[1], frames[0])
    assert reverse["hazard_ratio"] == pytest.approx(1.0 / hr["hazard_ratio"], rel=1e-4)


def test_robust_variance_matches_lifelines_cluster() -> None:
    rng = np.random.default_rng(7)
    n = 600
    base = rng.exponential(1.0, n)
    t = np.concatenate([base, base * rng.lognormal(0.3, 0.5, n)])  # the same subjects twice: correlated
    e = rng.random(2 * n) < 0.7
    x = np.repeat([0.0, 1.0], n)
    ids = np.tile(np.arange(n), 2)
    df = pd.DataFrame({"t": t, "e": e.astype(float), "x": x, "c": ids})
    ref = CoxPHFitter().fit(df, "t", "e", cluster_col="c")
    mine = survival.robust_variance(t, e, x, ids, float(ref.params_["x"]))
    assert math.sqrt(mine) == pytest.approx(float(ref.standard_errors_["x"]), rel=1e-6)
    frames = [pd.DataFrame({"patient_id": ids[:n], "duration_days": t[k * n:(k + 1) * n],
                            "event": e[k * n:(k + 1) * n]}) for k in (0, 1)]
    hr = survival.hazard_ratio(frames[0], frames[1])
    assert hr["paired"] == 1.0
    assert math.log(hr["hazard_ratio"]) == pytest.approx(float(ref.params_["x"]), rel=1e-6)


def test_care_events_counts_any_kind_plain_or_categorical() -> None:
    events = pd.DataFrame({
        "patient_id": [1, 1, 1, 1, 2, 2, 2, 3],
        "kind": ["diagnosis", "treatment_start", "treatment_start", "death", "treatment_start", "palliative_care",
                 "palliative_care", "a_kind_from_the_future"],
        "detail": ["", "surgery:mastectomy", "chemotherapy:line1", "breast_cancer", "chemotherapy:line1", "pain",
                   "pain", "x"],
    })
    plain = analysis.care_events(events)
    assert plain.loc[("treatment_start", "chemotherapy:line1"), "patients"] == 2
    assert plain.loc[("palliative_care", "pain")].tolist() == [1, 2]
    assert ("a_kind_from_the_future", "x") in plain.index
    assert "diagnosis" not in plain.index.get_level_values("kind") and len(plain) == 4
    categorical = analysis.care_events(events.astype({"kind": "category", "detail": "category"}))
    pd.testing.assert_frame_equal(plain, categorical)
