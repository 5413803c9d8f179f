"""Target emulation and ``metastasis validate``: definitions checked on hand-built tables, the tolerance
rule of the targets README, the GBSG2 bands against lifelines, and one small end-to-end validation."""

from __future__ import annotations

import csv
import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from metastasis import parameters
from metastasis.biology.growth import age_at_volume, doubling_days_at, rate_from_doubling, volume_from_diameter
from metastasis.calibration import gbsg2, targets
from metastasis.calibration.settings import SETTINGS, Simulated, kaplan_meier_at, simulate_eligible
from metastasis.calibration.validate import distance_scale, judge, tolerance_interval, tolerance_position
from metastasis.cli import main
from metastasis.detection.imaging import Imaging
from metastasis.runner import simulate_candidates
from metastasis.scenario import load_scenario
from metastasis.vocabulary import DAYS_PER_YEAR, MODALITY_CODE, ORGAN_CODE, SUBTYPE_ER_POSITIVE, SUBTYPES


def _csv_rows(name: str) -> int:
    text = resources.files("metastasis").joinpath(f"data/targets/{name}.csv").read_text(encoding="utf-8")
    return len(list(csv.DictReader(text.splitlines())))


def test_kaplan_meier_and_greenwood_match_lifelines() -> None:
    rng = np.random.default_rng(3)
    t = np.round(rng.exponential(5.0, 400), 1)  # rounding makes ties
    e = rng.random(400) < 0.7
    kmf = KaplanMeierFitter().fit(t, e)
    for at in (0.5, 2.0, 5.0, 9.0):
        surv, se = kaplan_meier_at(t, e, at)
        assert surv == pytest.approx(float(kmf.predict(at)), abs=1e-12)
        # Greenwood: var = S^2 sum d / (n (n - d)) over event times up to `at`
        times = np.unique(t[e & (t <= at)])
        d = np.array([np.sum(e & (t == x)) for x in times])
        n = np.array([np.sum(t >= x) for x in times])
        assert se == pytest.approx(surv * math.sqrt(np.sum(d / (n * (n - d)))), rel=1e-12)
    assert kaplan_meier_at(t, e, -1.0) == (1.0, 0.0)


def test_weighted_kaplan_meier_is_that_of_the_data_set_with_repeated_patients() -> None:
    rng = np.random.default_rng(5)
    t = np.round(rng.exponential(5.0, 300), 1)
    e = rng.random(300) < 0.6
    w = rng.integers(0, 4, 300)  # 0 drops a patient, 3 counts her three times
    kmf = KaplanMeierFitter().fit(t, e, weights=w)
    for at in (1.0, 4.0, 8.0):
        weighted = kaplan_meier_at(t, e, at, w.astype(float))
        repeated = kaplan_meier_at(np.repeat(t, w), np.repeat(e, w), at)
        assert weighted == pytest.approx(repeated, rel=1e-12)
        assert weighted[0] == pytest.approx(float(kmf.predict(at)), abs=1e-12)
    assert kaplan_meier_at(t, e, 6.0, np.ones(300)) == pytest.approx(kaplan_meier_at(t, e, 6.0), rel=1e-12)


def test_gbsg2_groups_are_standardised_to_the_trial_grade_mix() -> None:
    simulated = pd.Series([3, 3, 3, 2, 2, 1, 3, 2, 3, 3])  # half grade 3, as simulated
    trial = gbsg2.data().query("horTh == 'yes' and size == '<=20mm' and nodes == 'N4+'")["grade"]
    assert trial.value_counts().to_dict() == {2: 16, 1: 5, 3: 2}
    w = gbsg2.grade_weights(simulated, trial)
    assert w.sum() == pytest.approx(len(simulated))
    mix = pd.Series(w).groupby(simulated.to_numpy()).sum() / w.sum()
    assert mix.to_dict() == pytest.approx({1: 5 / 23, 2: 16 / 23, 3: 2 / 23})
    # a grade the trial group lacks weighs nothing; one no simulated woman has is left out of the mix
    w = gbsg2.grade_weights(pd.Series([1, 2, 2, 3]), pd.Series([2, 2, 3, 3, 3, 3]))
    assert w.tolist() == pytest.approx([0.0, 4 * (1 / 3) / 2, 4 * (1 / 3) / 2, 4 * (2 / 3)])
    w = gbsg2.grade_weights(pd.Series([2, 2, 3]), pd.Series([1, 1, 2, 3]))
    assert (pd.Series(w).groupby([2, 2, 3]).sum() / w.sum()).to_dict() == pytest.approx({2: 0.5, 3: 0.5})


@pytest.mark.parametrize(
    ("kind", "published", "se", "expected"),
    [
        ("percent", 5.0, 0.1, (3.0, 7.0)),          # 2 * 0.1 + 0.5 < 2 points: the floor
        ("percent", 40.0, 1.0, (34.0, 46.0)),       # 2 * 1 + 4 = 6 points
        ("percent", 40.0, math.nan, (36.0, 44.0)),  # no simulation error: 10 % relative
        ("time", 30.0, math.nan, (25.5, 34.5)),
        ("ratio", 2.0, math.nan, (1.7, 2.3)),
        ("hazard_or_odds_ratio", 2.44, math.nan, (1.83, 3.05)),
    ],
)
def test_tolerance_rule_of_the_targets_readme(kind: str, published: float, se: float,
                                             expected: tuple[float, float]) -> None:
    assert tolerance_interval(kind, published, se) == pytest.approx(expected)


def test_band_rows_pass_inside_the_published_interval_only() -> None:
    rows = pd.DataFrame({"kind": ["band"] * 3, "published": [70.0] * 3, "simulated": [60.0, 80.0, 50.0],
                         "se": [1.0] * 3, "low": [55.0] * 3, "high": [80.0] * 3, "unit": ["percent"] * 3})
    judged = judge(rows)
    assert judged["pass"].tolist() == [True, True, False]
    assert distance_scale("band", 70.0, 55.0, 80.0) == pytest.approx(12.5)
    nan_row = rows.iloc[:1].assign(simulated=math.nan, kind="percent")
    assert not judge(nan_row)["pass"].iloc[0]


def _sim(patients: pd.DataFrame, lesions: pd.DataFrame) -> Simulated:
    sc = load_scenario("default")
    return Simulated(sc, sc.parameter_values(), patients, lesions)


def test_site_patterns_and_leone_groups_follow_the_readme_definitions() -> None:
    organs = {1: ["bone"], 2: ["bone", "distant_nodes"], 3: ["lung", "liver"], 4: ["distant_nodes", "other"],
              5: ["brain", "bone"], 6: ["liver"]}
    rows = [(pid, organ, 10.0) for pid, os in organs.items() for organ in os]
    rows += [(7, "bone", 400.0), (8, "breast", 5.0)]  # found after the window; not distant
    lesions = pd.DataFrame(rows, columns=["patient_id", "organ", "detected_days"])
    pattern, leone = targets.denovo_patterns(_sim(pd.DataFrame(), lesions))
    assert pattern.to_dict() == {1: "bone_only", 2: "multiple_sites", 3: "multiple_sites", 4: "other_only",
                                 5: "multiple_sites", 6: "liver_only"}
    assert leone.to_dict() == {1: "bone_only", 2: "bone_only", 3: "visceral", 4: "other",
                               5: "bone_and_visceral", 6: "visceral"}


def test_primary_doubling_time_is_recovered_from_the_growth_rate() -> None:
    sim = _sim(pd.DataFrame(), pd.DataFrame())
    cap = sim.values["growth.carrying_capacity_mm3"]
    diameters, doubling = np.array([8.0, 15.0, 30.0]), np.array([60.0, 157.0, 300.0])
    rate = rate_from_doubling(doubling, volume_from_diameter(diameters), cap)
    sim.patients = pd.DataFrame({"patient_id": [0, 1, 2], "age_years": [45.0, 60.0, 75.0],
                                 "tumour_diameter_mm": diameters})
    sim.lesions = pd.DataFrame({"patient_id": [0, 1, 2], "lesion_id": [0, 0, 0], "growth_rate_per_day": rate})
    g = targets.primary_growth(sim)
    assert g["vdt_days"].to_numpy() == pytest.approx(doubling, rel=1e-12)
    # 10 -> 20 mm multiplies the volume by 8: three doublings, each slower than the last (Gompertz), so the
    # time lies between three doubling times at 10 mm and three at 20 mm
    days = g["years_10_to_20_mm"].to_numpy() * DAYS_PER_YEAR
    at10, at20 = (doubling_days_at(rate, volume_from_diameter(d), cap) for d in (10.0, 20.0))
    assert np.all(3 * at10 < days) and np.all(days < 3 * at20)


def test_smoothed_hazard_peaks_where_the_events_cluster() -> None:
    rng = np.random.default_rng(5)
    events = rng.normal(3.0, 0.4, 500)
    duration = np.concatenate([events, np.full(20_000, 10.0)])  # a large cohort censored at 10 years
    event = np.concatenate([np.ones(500, bool), np.zeros(20_000, bool)])
    peak = targets.smoothed_hazard_peak(duration, event, 1.0, np.arange(0.5, 10.0, 0.05))
    assert peak == pytest.approx(3.0, abs=0.15)


def test_gbsg2_observed_bands_are_lifelines_kaplan_meier() -> None:
    obs = gbsg2.observed()
    data = gbsg2.data()
    assert len(obs) == 8 * len(gbsg2.YEARS)
    assert obs.groupby("years")["n"].sum().tolist() == [len(data)] * len(gbsg2.YEARS)
    first = obs.iloc[0]
    g = data[(data["horTh"] == first["horTh"]) & (data["size"] == first["size"]) & (data["nodes"] == first["nodes"])]
    surv, _ = kaplan_meier_at(g["time"].to_numpy(), g["cens"].to_numpy() == 1, first["years"] * DAYS_PER_YEAR)
    assert first["estimate"] == pytest.approx(100 * surv, abs=1e-9)
    assert (obs["low"] <= obs["estimate"]).all() and (obs["estimate"] <= obs["high"]).all()


def test_gbsg2_arms_match_the_data_set() -> None:
    data = gbsg2.data()
    for horth, years in gbsg2.ARMS.items():
        sc = gbsg2.settings()[f"gbsg2-horth-{horth}"].load()
        arm = data[data["horTh"] == horth]
        er_share = sum(sc.cohort.subtype_mix[s] for s, er in zip(SUBTYPES, SUBTYPE_ER_POSITIVE, strict=True) if er)
        assert er_share == pytest.approx(float((arm["estrec"] >= gbsg2.ER_CUTOFF).mean()), abs=1e-6)
        assert sc.treatment.early.endocrine_years == years
        assert sc.cohort.nodes_positive_min == 1 and sc.treatment.early.breast_conserving_share == 0


def test_in_memory_settings_keep_the_patients_simulate_keeps() -> None:
    sc = load_scenario("default", ["cohort.nodes_positive_min=1", "horizon_years=1"])
    values = sc.parameter_values()
    sim = simulate_eligible(sc, values, 150)
    direct = simulate_candidates(sc, values, 0, 2000)["patients"]["patient_id"].to_numpy()[:150]
    assert len(sim.patients) == 150
    assert sim.patients["patient_id"].tolist() == direct.tolist()
    assert (sim.patients["nodes_positive"] >= 1).all()


def test_a_shorter_horizon_leaves_the_course_before_it_unchanged() -> None:
    """Settings whose figures end early stop soon after (GBSG2 at 6 years): every woman's course up to the
    last step of the care pathway that the shorter horizon cuts short, and so every figure before it, is
    that of the 20-year run (inside that last step the death hazard is integrated to the horizon, not to
    the step's end, so a death there can move by a fraction of a day)."""
    setting = gbsg2.settings()["gbsg2-horth-yes"]
    assert "horizon_years=6" in setting.overrides
    short = setting.load()
    long = load_scenario("default", [o for o in setting.overrides if not o.startswith("horizon_years")])
    assert long.horizon_years == 20.0
    sims = [simulate_eligible(sc, sc.parameter_values(), 300) for sc in (short, long)]
    assert sims[0].patients["patient_id"].tolist() == sims[1].patients["patient_id"].tolist()
    step = short.parameter_values()["death.step_days"]
    cut = step * math.floor(6 * DAYS_PER_YEAR / step)  # the start of the step the 6-year horizon cuts
    deaths = [s.patients["death_days"].where(s.patients["death_days"] < cut) for s in sims]
    pd.testing.assert_series_equal(*deaths)
    assert deaths[0].notna().sum() > 20
    cols = ["patient_id", "lesion_id", "organ", "detected_days"]
    found = [s.lesions.loc[s.lesions["detected_days"] < cut, cols].reset_index(drop=True) for s in sims]
    pd.testing.assert_frame_equal(*found)
    assert len(found[0]) > 100
    for years in (3.0, 5.0):
        rfs = [gbsg2.recurrence_free(s) for s in sims]
        at = [kaplan_meier_at(r["duration"].to_numpy(), r["event"].to_numpy(), years * DAYS_PER_YEAR) for r in rfs]
        assert at[0] == at[1]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, object]], str]:
    """``validate --json --html`` at 400 patients: the JSON rows and the page."""
    import contextlib
    import io

    out = io.StringIO()
    page = tmp_path_factory.mktemp("validate") / "validation.html"
    with contextlib.redirect_stdout(out):
        assert main(["validate", "--patients", "400", "--seed", "2", "--json", "--html", str(page)]) == 0
    return list(json.loads(out.getvalue())), page.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def small_validation(small_run: tuple[list[dict[str, object]], str]) -> list[dict[str, object]]:
    return small_run[0]


def test_validate_has_one_row_per_target_row(small_validation: list[dict[str, object]]) -> None:
    table = pd.DataFrame(small_validation)
    counts = table["target"].value_counts().to_dict()
    expected = {name: _csv_rows(name) for name in targets.EMULATIONS}
    expected["sites_by_subtype_at_relapse"] *= 4  # a wide table: bone, liver, lung, brain per subtype
    expected["gbsg2_recurrence_free_survival"] = 8 * len(gbsg2.YEARS)
    assert counts == expected
    assert not table.duplicated(["target", "row"]).any()
    assert set(table["kind"]) <= {"percent", "time", "ratio", "hazard_or_odds_ratio", "band"}
    assert table["pass"].map(type).eq(bool).all()
    ok = table.dropna(subset=["simulated"])
    assert ((ok["tolerance_low"] <= ok["simulated"]) & (ok["simulated"] <= ok["tolerance_high"])).eq(ok["pass"]).all()


def test_validate_html_page_shows_every_row_and_the_gbsg2_curves(
        small_run: tuple[list[dict[str, object]], str]) -> None:
    rows, page = small_run
    table = pd.DataFrame(rows)
    assert page.startswith("<!DOCTYPE html>") and "http" not in page.replace("http-equiv", "")
    n_targets = table["target"].nunique()
    assert page.count("<table>") == n_targets
    assert page.count("<tr>") == len(table) + n_targets  # one header row per target table
    assert page.count("<td>FAIL</td>") == int((~table["pass"]).sum())
    assert f"{int(table['pass'].sum())} of {len(table)}" in page
    assert page.count("<svg") == 2 and "GBSG2" in page and "--seed 2" in page


def test_tolerance_position_is_within_one_exactly_when_a_row_passes(small_validation: list[dict[str, object]]) -> None:
    table = pd.DataFrame(small_validation)
    pos = tolerance_position(table)
    done = table["simulated"].notna()
    assert (pos[done].abs() <= 1 + 1e-12).eq(table.loc[done, "pass"]).all()
    assert pos[~done].isna().all()
    # 0 at the published value, +1 and -1 at the bounds, whatever the asymmetry of a band
    rows = pd.DataFrame({"published": [50.0, 50.0, 50.0], "tolerance_low": [40.0, 40.0, 40.0],
                         "tolerance_high": [70.0, 70.0, 70.0], "simulated": [50.0, 70.0, 35.0]})
    assert tolerance_position(rows).tolist() == [0.0, 1.0, -1.5]


def test_gbsg2_curves_are_the_rows_at_three_and_five_years() -> None:
    from metastasis.calibration.settings import Simulations

    sims = Simulations({}, 2000, gbsg2.settings(), seed=3)
    rows = {r.row: r for r in gbsg2.emulate_gbsg2(sims)}
    curves = gbsg2.curves(sims, step_days=DAYS_PER_YEAR / 4)
    assert set(curves["source"]) == {"trial", "simulated"} and len(curves.groupby(["horTh", "size", "nodes"])) == 8
    for (horth, size, nodes, source), c in curves.groupby(["horTh", "size", "nodes", "source"]):
        s = c["survival"].to_numpy()
        assert s[0] == 1.0 and (np.diff(s) <= 1e-12).all()
        assert ((c["ci_lower"] <= c["survival"] + 1e-12) & (c["survival"] <= c["ci_upper"] + 1e-12)).all()
        for years in gbsg2.YEARS:
            row = rows[f"horTh={horth} {size} {nodes} {years:g}y"]
            at = c.loc[c["time_days"] <= years * DAYS_PER_YEAR, "survival"].iloc[-1]
            if source == "simulated":
                assert 100 * at == pytest.approx(row.simulated, abs=1e-9)
                assert c["n"].iloc[0] == row.n
            else:
                assert 100 * at == pytest.approx(row.published, abs=1e-9)


def test_validate_html_in_a_missing_directory_is_an_input_error(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--patients", "100", "--html", str(tmp_path / "no" / "page.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --html: ")


def test_validate_shares_are_consistent(small_validation: list[dict[str, object]]) -> None:
    table = pd.DataFrame(small_validation).set_index(["target", "row"])["simulated"]
    sites = table["denovo_stage4_sites"]
    assert sites.sum() == pytest.approx(100.0)
    at_dx = table["metastasis_at_diagnosis"]
    assert at_dx["any_distant"] >= at_dx[["bone", "lung", "liver", "brain"]].max()
    assert set(SETTINGS) == {"default", "er-positive", "ebctcg-bcs-rt", "ebctcg-bcs-no-rt", "bcs-margin-0",
                             "bcs-margin-1"}


def test_validate_seed_replaces_the_scenarios_seed(small_validation: list[dict[str, object]]) -> None:
    table = pd.DataFrame(small_validation).set_index(["target", "row"])["simulated"]
    seed_2 = table["metastasis_at_diagnosis"].to_dict()  # the fixture ran `validate --seed 2`

    def at_diagnosis(seed: int | None) -> dict[str, float]:
        rows = targets.emulate(None, 400, gbsg2=False, targets=("metastasis_at_diagnosis",), seed=seed)
        return dict(zip(rows["row"], rows["simulated"], strict=True))

    assert at_diagnosis(2) == seed_2
    assert at_diagnosis(None) != seed_2 and at_diagnosis(None) == at_diagnosis(1)


def _validate_json(args: list[str]) -> pd.DataFrame:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["validate", "--patients", "400", "--seed", "2", "--json", *args]) == 0
    return pd.DataFrame(json.loads(out.getvalue())).set_index(["target", "row"])["simulated"]


def test_validate_parameters_file_and_set_apply_in_every_setting(
        small_validation: list[dict[str, object]], tmp_path: Path) -> None:
    """``--parameters FILE`` validates the file's [parameters] table instead of the defaults (the table is
    what ``targets.emulate`` gives with those values), and a later ``--set`` of the same key wins."""
    mu = parameters.REGISTRY["dissemination.mu"].default
    path = tmp_path / "best.toml"
    path.write_text(f'[parameters]\n"dissemination.mu" = {3 * mu!r}\n', encoding="utf-8")
    defaults = pd.DataFrame(small_validation).set_index(["target", "row"])["simulated"]
    tripled = _validate_json(["--parameters", str(path)])
    expected = targets.emulate({"dissemination.mu": 3 * mu}, 400, gbsg2=False, targets=("metastasis_at_diagnosis",),
                               seed=2)
    assert tripled["metastasis_at_diagnosis"].tolist() == expected["simulated"].tolist()
    assert tripled["metastasis_at_diagnosis"]["any_distant"] > defaults["metastasis_at_diagnosis"]["any_distant"]
    back = _validate_json(["--parameters", str(path), "--set", f"parameters.dissemination.mu={mu!r}"])
    pd.testing.assert_series_equal(back, defaults)


@pytest.mark.parametrize("text, message", [(None, "is not a file"), ("x = 1\n", "has no [parameters] table"),
                                           ('[parameters]\n"dissemination.mu" = "a"\n', "must be a number")])
def test_validate_bad_parameters_file_is_an_input_error(text: str | None, message: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.toml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    assert main(["validate", "--parameters", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_validate_negative_seed_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--seed", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --seed: ")


@pytest.mark.parametrize("patients", ["10", "many"])
def test_validate_bad_patients_is_an_input_error(patients: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--patients", patients]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --patients: ")


def test_interval_cancers_are_those_the_last_screen_showed_and_missed() -> None:
    sim = _sim(pd.DataFrame(), pd.DataFrame())
    cap = sim.values["growth.carrying_capacity_mm3"]
    doubling = np.array([60.0, 150.0, 400.0, 150.0])
    rate = rate_from_doubling(doubling, volume_from_diameter(20.0), cap)
    sim.patients = pd.DataFrame({"patient_id": [0, 1, 2, 3], "age_years": [60.0, 60.0, 60.0, 45.0],
                                 "tumour_diameter_mm": [20.0] * 4})
    sim.lesions = pd.DataFrame({"patient_id": [0, 1, 2, 3], "lesion_id": [0] * 4, "growth_rate_per_day": rate})
    ic = targets.interval_cancer_growth(sim)
    assert ic["age_years"].tolist() == [60.0] * 3  # the screening programme's ages only
    w = ic["weight"].to_numpy()
    imaging = Imaging.from_values(sim.values)
    mammography, breast = MODALITY_CODE["mammography"], ORGAN_CODE["breast"]
    # the slow tumour was >= 10 mm at every screen: seen with mammography's plateau sensitivity
    assert w[2] == pytest.approx(1.0 - imaging.s_max[mammography, breast], abs=0.05)
    # the fast one was visible (>= 2 mm) only at screens in its last days, and missed at most with the
    # 2 mm miss rate: the series, which needs a lesion visible in retrospect, mostly cannot include it
    days_visible = (age_at_volume(volume_from_diameter(20.0), cap)
                    - age_at_volume(volume_from_diameter(imaging.visible_mm), cap)) / rate[0]
    share_visible = days_visible / targets.INTERVAL_SERIES_SCREEN_EVERY_DAYS
    assert 0.0 < w[0] <= share_visible * (1.0 - imaging.sensitivity(mammography, breast, imaging.visible_mm))
    assert w[1] > max(w[0], w[2])  # between: small, visible and often missed at the last screen
    # exponential growth between two Gompertz sizes: between the doubling times at 2 mm (the smallest
    # visible size) and at diagnosis
    at_visible = doubling_days_at(rate[:3], volume_from_diameter(imaging.visible_mm), cap)
    vdt = ic["vdt_days"].to_numpy()
    assert np.all(at_visible < vdt) and np.all(vdt < doubling[:3])
    assert np.all((ic["screen_days"] > 0.0) & (ic["screen_days"] < targets.INTERVAL_SERIES_SCREEN_EVERY_DAYS))
