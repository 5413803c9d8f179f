"""Behaviour of the whole model on common random numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import read_table, simulate
from metastasis.analysis import first_distant_detection
from metastasis.vocabulary import DISTANT_ORGANS


def test_pet_ct_staging_finds_more_than_chest_xray_on_the_same_patients(tmp_path: Path) -> None:
    pet = simulate(tmp_path, "staging-pet-ct-all", 12_000)
    cxr = simulate(tmp_path, "staging-chest-xray-all", 12_000)
    cols = ["patient_id", "lesion_id", "organ", "origin", "parent_lesion_id", "seeded_days", "dormant_until_days",
            "growth_rate_per_day"]
    lp, lc = read_table(pet, "lesions"), read_table(cxr, "lesions")
    # every lesion seeded up to day 0 is the same lesion in both runs (listed when it reaches 1 mm, which
    # can differ only if care differs); those of the natural history already visible (2 mm) at day 0 are
    # listed in both (not so residual disease, which surgery leaves, nor the lesions of a woman with more in
    # an organ than are listed one by one: the rest form an aggregate row)
    both = lp[lp["seeded_days"] <= 0][cols].merge(lc[lc["seeded_days"] <= 0][cols], on=["patient_id", "lesion_id"],
                                                   suffixes=("_pet", "_cxr"))
    folded = set(lp.loc[lp["origin"] == "aggregate", "patient_id"]) | set(lc.loc[lc["origin"] == "aggregate",
                                                                                 "patient_id"])

    def visible(les: pd.DataFrame) -> set[tuple[int, int]]:
        at0 = les.loc[(les["seeded_days"] <= 0) & (les["detectable_days"] <= 0) & (les["origin"] != "residual")
                      & ~les["patient_id"].isin(folded),
                      ["patient_id", "lesion_id"]]
        return set(map(tuple, at0.to_numpy().tolist()))

    seen_pet = visible(lp)
    assert seen_pet == visible(lc) and len(seen_pet) > 10_000
    assert len(both) > 0.95 * (lp["seeded_days"] <= 0).sum()
    for col in cols[2:]:
        np.testing.assert_array_equal(both[f"{col}_pet"].to_numpy(), both[f"{col}_cxr"].to_numpy())
    # patients operated on at day 0 in both runs and never found metastatic in either (so never treated
    # differently) share their whole natural history, after day 0 too
    def operated(run: Path) -> set[int]:
        ev = read_table(run, "events")
        day0 = ev[(ev["kind"] == "treatment_start") & (ev["time_days"] == 0) & (ev["detail"] == "surgery:axillary")]
        return set(day0["patient_id"])

    def metastatic(les: pd.DataFrame) -> set[int]:
        return set(les.loc[les["organ"].isin(DISTANT_ORGANS) & les["detected_days"].notna(), "patient_id"])

    same = (operated(pet) & operated(cxr)) - metastatic(lp) - metastatic(lc)
    nat = [*cols, "detectable_days", "ended_days"]
    a = lp[lp["patient_id"].isin(same) & (lp["origin"] != "aggregate")][nat].reset_index(drop=True)
    b = lc[lc["patient_id"].isin(same) & (lc["origin"] != "aggregate")][nat].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    pp, pc = read_table(pet, "patients"), read_table(cxr, "patients")
    assert (pp["patient_id"].to_numpy() == pc["patient_id"].to_numpy()).all()
    only_pet = int((pp["occult_distant"] & ~pc["occult_distant"]).sum())
    only_cxr = int((pc["occult_distant"] & ~pp["occult_distant"]).sum())
    # McNemar: under "no difference" discordant pairs split 50:50; require z > 3 in PET's favour
    z = (only_cxr - only_pet) / math.sqrt(only_cxr + only_pet)
    assert z > 3, (only_pet, only_cxr)


def test_larger_t_and_n_give_more_distant_relapse(tmp_path: Path) -> None:
    run = simulate(tmp_path, "default", 15_000)
    patients = read_table(run, "patients").set_index("patient_id")
    first = first_distant_detection(read_table(run, "lesions"))
    early = patients[patients["clinical_stage"] != "IV"]
    relapsed = early.index.isin(first.index[first["first_distant_days"] > 90])
    small = ((early["t_stage"] == "T1") & (early["n_stage"] == "N0")).to_numpy()
    large = ((early["t_stage"] != "T1") & (early["n_stage"] != "N0")).to_numpy()
    p1, n1 = relapsed[small].mean(), small.sum()
    p2, n2 = relapsed[large].mean(), large.sum()
    pooled = relapsed[small | large].mean()
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert z > 3, (p1, p2)


def test_default_run_is_of_the_right_order(default_run: Path) -> None:
    """Coarse checks of what issue 2 promises; calibration proper is later work."""
    patients = read_table(default_run, "patients")
    share_iv = (patients["clinical_stage"] == "IV").mean()
    assert 0.01 < share_iv < 0.10  # SEER: 5.06 % of new cases have distant disease found at diagnosis
    assert (patients["true_stage"] == "IV").mean() >= share_iv
    assert not (patients["occult_distant"] & (patients["clinical_stage"] == "IV")).any()
    # occult implies a distant lesion of >= 2 mm present at day 0
    lesions = read_table(default_run, "lesions")
    present = lesions[lesions["organ"].isin(DISTANT_ORGANS) & (lesions["detectable_days"] <= 0)]
    assert set(patients.loc[patients["occult_distant"], "patient_id"]) <= set(present["patient_id"])
    deaths = patients["death_days"].notna()
    assert (patients.loc[deaths, "death_cause"] != "").all()
    assert np.allclose(patients.loc[deaths, "followup_end_days"], patients.loc[deaths, "death_days"])
