"""The output contract: identical tables for any batch size, exact schema, readable without project code."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from conftest import simulate
from metastasis.parameters import REGISTRY

DICT = "dictionary<values=string, indices=int32, ordered=0>"
SCHEMA = {
    "patients": {
        "patient_id": "int64", "age_years": "double", "subtype": DICT, "grade": "int8",
        "tumour_diameter_mm": "double", "nodes_positive": "int32", "t_stage": DICT, "n_stage": DICT,
        "clinical_stage": DICT, "true_stage": DICT, "occult_distant": "bool", "micrometastatic_distant": "bool",
        "aggressiveness": "double", "distant_symptom_days": "double", "death_days": "double",
        "death_cause": DICT, "lethal_origin": DICT, "followup_end_days": "double",
    },
    "lesions": {
        "patient_id": "int64", "lesion_id": "int64", "organ": DICT, "origin": DICT, "parent_lesion_id": "int64",
        "seeded_days": "double", "dormant_until_days": "double", "growth_rate_per_day": "double",
        "detectable_days": "double", "detected_days": "double", "detected_by": DICT,
        "diameter_at_detection_mm": "double", "ended_days": "double", "end_reason": DICT,
    },
    "exams": {"patient_id": "int64", "time_days": "double", "purpose": DICT, "modality": DICT, "organ": DICT,
              "result": DICT},
    "events": {"patient_id": "int64", "time_days": "double", "kind": DICT, "organ": DICT, "lesion_id": "int64",
               "detail": DICT},
}
SORT = {
    "patients": ["patient_id"],
    "lesions": ["patient_id", "lesion_id"],
    "exams": ["patient_id", "time_days", "modality", "organ"],
    "events": ["patient_id", "time_days", "kind"],
}


def _read(directory: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(directory / name)


def test_tables_identical_for_two_batch_sizes(tmp_path: Path) -> None:
    a = simulate(tmp_path, "default", 1500, batch_size=400)
    b = simulate(tmp_path, "default", 1500, batch_size=1700)
    assert len(list((a / "patients").glob("*.parquet"))) == 4
    for name in SCHEMA:
        pd.testing.assert_frame_equal(_read(a, name), _read(b, name))
    # every part carries each categorical column's whole vocabulary, the last one too (cut to 1,500
    # patients after a round trip through Parquet), so parts concatenate without unification
    for name in SCHEMA:
        dictionaries = [{c: pq.read_table(part)[c].chunks[0].dictionary.to_pylist() for c in SCHEMA[name]
                         if SCHEMA[name][c] == DICT} for part in sorted((a / name).glob("*.parquet"))]
        assert all(d == dictionaries[0] for d in dictionaries), name
        assert len(dictionaries[0]["organ" if "organ" in dictionaries[0] else "subtype"]) >= 5, name


def test_schema_and_dtypes_exactly_as_spec(default_run: Path) -> None:
    for name, columns in SCHEMA.items():
        for part in sorted((default_run / name).glob("*.parquet")):
            schema = pq.read_schema(part)
            assert schema.names == list(columns), name
            assert {f.name: str(f.type) for f in schema} == columns, name
    events = pq.read_table(default_run / "events")
    assert events["lesion_id"].null_count > 0  # nullable: symptom onset has no lesion


def test_rows_sorted_within_parts_and_vocabulary(default_run: Path) -> None:
    for name, keys in SORT.items():
        frame = _read(default_run, name)
        for key in keys:
            if isinstance(frame[key].dtype, pd.CategoricalDtype):
                frame[key] = frame[key].astype(str)
        assert frame.equals(frame.sort_values(keys, kind="stable")), name
    patients = _read(default_run, "patients")
    assert patients["patient_id"].is_unique
    assert set(patients["clinical_stage"].astype(str)) <= {"I", "II", "III", "IV"}
    assert set(patients["death_cause"].astype(str)) <= {"", "breast_cancer", "treatment", "other"}
    lesions = _read(default_run, "lesions")
    assert (lesions.groupby("patient_id")["lesion_id"].min() == 0).all()  # every patient has her primary
    assert set(lesions["end_reason"].astype(str)) <= {"resected", "irradiated", "extinct", "death", "horizon"}
    exams = _read(default_run, "exams")
    assert set(exams["result"].astype(str)) <= {"tp", "fp", "tn", "fn"}


def test_a_lesion_is_detectable_only_within_its_life(default_run: Path) -> None:
    """The day a lesion reaches 2 mm lies between its seeding and its end, and no lesion is found after the
    woman's end, even when she dies between an exam and its confirmation."""
    lesions = _read(default_run, "lesions")
    days = lesions.dropna(subset=["detectable_days"])
    assert len(days) > 1000
    assert (days["detectable_days"] >= days["seeded_days"]).all()
    assert (days["detectable_days"] <= days["ended_days"]).all()
    # nor is one detected after the woman's death or the horizon
    end = _read(default_run, "patients").set_index("patient_id")["followup_end_days"]
    found = lesions.dropna(subset=["detected_days"])
    assert len(found) > 500
    assert (found["detected_days"].to_numpy() <= end.loc[found["patient_id"]].to_numpy()).all()


def test_no_exam_after_the_womans_end(default_run: Path) -> None:
    """Exams, work-ups for symptoms and their confirmations stop at death (other causes included) or the
    horizon."""
    exams = _read(default_run, "exams")
    end = _read(default_run, "patients").set_index("patient_id")["followup_end_days"]
    assert (exams["time_days"].to_numpy() <= end.loc[exams["patient_id"]].to_numpy()).all()
    assert set(exams["purpose"]) >= {"followup", "symptoms", "confirmation"}


def test_each_detected_lesion_has_one_detection_event_at_its_detected_day(default_run: Path) -> None:
    """The events' detections are the lesions table's, one each: the primary diagnosed at day 0 included,
    and a lesion that a later-dated exam saw before an earlier-dated one of the same step (or a
    confirmation dated past its step) logged at its first day only."""
    lesions = _read(default_run, "lesions")
    events = _read(default_run, "events")
    found = lesions.loc[lesions["detected_days"].notna() & (lesions["origin"].astype(str) != "aggregate"),
                        ["patient_id", "lesion_id", "detected_days", "detected_by"]]
    detections = events.loc[events["kind"].astype(str) == "detection",
                            ["patient_id", "lesion_id", "time_days", "detail"]]
    assert not detections.duplicated(["patient_id", "lesion_id"]).any()
    both = found.merge(detections, on=["patient_id", "lesion_id"], how="outer", validate="one_to_one")
    assert len(both) == len(found) == len(detections) and (lesions["lesion_id"] == 0).sum() == len(_read(
        default_run, "patients"))
    assert (both["time_days"] == both["detected_days"]).all()
    assert (both["detail"].astype(str) == both["detected_by"].astype(str)).all()


def test_one_exam_per_patient_day_modality_and_organ(default_run: Path, intensive_run: Path) -> None:
    """SPEC's key of the exams table is unique. Two exams of one day falsely positive in the same organ
    (CT and a bone scan in bone, mammography and a clinical exam in the breast) lead to one confirmation,
    not two; a symptom work-up on the day of a scheduled CT and bone scan (intensive follow-up: symptoms
    are reported at the visit) or of a restaging does not list those exams again."""
    for run in (default_run, intensive_run):
        exams = _read(run, "exams")
        assert not exams.duplicated(SORT["exams"]).any()
        assert (exams["purpose"].astype(str) == "confirmation").sum() > 100
    purpose = _read(intensive_run, "exams")["purpose"].astype(str)
    assert (purpose == "symptoms").sum() > 100 and (purpose == "followup").sum() > 100


def test_readable_by_duckdb_and_run_json(default_run: Path) -> None:
    con = duckdb.connect()
    n = con.execute(f"select count(*) from read_parquet('{default_run}/patients/*.parquet')").fetchone()
    assert n is not None and n[0] == 3000
    stages = con.execute(
        f"select clinical_stage, count(*) from read_parquet('{default_run}/patients/*.parquet') group by 1"
    ).fetchall()
    assert sum(c for _, c in stages) == 3000
    info = json.loads((default_run / "run.json").read_text())
    assert info["status"] == "complete"
    assert info["row_counts"]["patients"] == 3000
    assert info["parameters"]["dissemination.gamma"] == REGISTRY["dissemination.gamma"].default
    assert info["scenario"]["name"] == "default"
