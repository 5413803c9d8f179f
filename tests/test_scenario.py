"""Scenario files: built-ins, validation errors, --set overrides, and no crash on garbage input."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metastasis import scenario
from metastasis.errors import InputError
from metastasis.scenario import Scenario, load_scenario, validate


def default_raw() -> dict[str, Any]:
    return tomllib.loads(scenario.scenario_text("default"))


# --- built-ins ----------------------------------------------------------------------------------------
def test_builtins_present() -> None:
    names = scenario.builtin_names()
    assert {"default", "staging-pet-ct-all", "staging-chest-xray-all", "followup-intensive"} <= set(names)


@pytest.mark.parametrize("name", scenario.builtin_names())
def test_builtin_loads(name: str) -> None:
    sc = load_scenario(name)
    assert sc.name == name
    assert sc.description.strip() and "\n" not in sc.description
    assert scenario.builtin_descriptions()[name] == sc.description
    assert sc.parameters == {}
    # the dump is plain JSON and validates back to the same scenario
    dumped = json.loads(json.dumps(sc.to_toml_dict()))
    assert validate(dumped) == sc
    assert "dissemination.gamma" in sc.parameter_values()


def test_default_contents() -> None:
    sc = load_scenario("default")
    assert sc.horizon_years == 20 and sc.seed == 1
    assert sc.cohort.age.distribution == "seer"
    assert sc.cohort.subtype_mix == {
        "luminal_a": 0.50,
        "luminal_b": 0.25,
        "luminal_her2": 0.10,
        "her2_enriched": 0.045,
        "triple_negative": 0.105,
    }
    assert sc.staging.modalities == ["clinical_exam", "mammography"] and sc.staging.window_days == 90
    (rule,) = sc.staging.rules
    assert (
        rule.when.clinical_stage == ["III"] and rule.when.symptoms is True and rule.add == ["ct", "bone_scan"]
    )
    assert rule.when.holds("III", "T3", "N1", False) and rule.when.holds("I", "T1", "N0", True)
    assert not rule.when.holds("II", "T2", "N0", False)
    assert sc.restaging.modalities == ["ct", "bone_scan"] and sc.restaging.every_months == 3
    (exam,) = sc.followup.exams
    assert (exam.modality, exam.every_months, exam.from_months, exam.until_months) == (
        "mammography",
        12,
        12,
        240,
    )
    assert sc.treatment == scenario.Treatment()


def test_comparators_differ_from_default_only_where_named() -> None:
    base = load_scenario("default").to_toml_dict()
    for name, path in [
        ("staging-pet-ct-all", "staging"),
        ("staging-chest-xray-all", "staging"),
        ("followup-intensive", "followup"),
    ]:
        other = load_scenario(name).to_toml_dict()
        differing = {k for k in base if base[k] != other[k]}
        assert differing == {"name", "description", path}
    assert load_scenario("staging-pet-ct-all").staging.modalities[-1] == "pet_ct"
    assert load_scenario("staging-chest-xray-all").staging.modalities[-1] == "chest_xray"
    exams = load_scenario("followup-intensive").followup.exams
    assert [(e.modality, e.until_months) for e in exams] == [
        ("mammography", 240),
        ("ct", 60),
        ("bone_scan", 60),
    ]


def test_unknown_builtin() -> None:
    with pytest.raises(InputError) as info:
        scenario.scenario_text("nope")
    assert info.value.field == "scenario" and "default" in info.value.message


# --- malformed scenarios ------------------------------------------------------------------------------
def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = raw
        for seg in head:
            node = node[int(seg)] if isinstance(node, list) else node[seg]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = raw
        for seg in head:
            node = node[seg]
        del node[last]

    return mutate


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown top-level key", _set("colour", "blue"), "colour"),
    ("unknown key in an exam", _set("followup.exams.0.modalty", "ct"), "followup.exams.0.modalty"),
    ("negative every_months", _set("followup.exams.0.every_months", -3), "followup.exams.0.every_months"),
    ("mix not summing to 1", _set("cohort.subtype_mix.luminal_a", 0.4), "cohort.subtype_mix"),
    ("unknown subtype", _set("cohort.subtype_mix.luminal_c", 0.0), "cohort.subtype_mix.luminal_c"),
    ("unknown modality", _set("staging.modalities", ["clinical_exam", "xray"]), "staging.modalities.1"),
    ("empty modalities", _set("staging.modalities", []), "staging.modalities"),
    ("duplicate modality", _set("restaging.modalities", ["ct", "ct"]), "restaging.modalities"),
    (
        "stage IV in a rule",
        _set("staging.rules.0.when.clinical_stage", ["IV"]),
        "staging.rules.0.when.clinical_stage.0",
    ),
    ("rule without condition", _set("staging.rules.0.when", {}), "staging.rules.0.when"),
    ("rule adding nothing", _set("staging.rules.0.add", []), "staging.rules.0.add"),
    ("age_min > age_max", lambda r: r["cohort"].update(age_min=70, age_max=50), "cohort.age_max"),
    (
        "nodes min > max",
        lambda r: r["cohort"].update(nodes_positive_min=4, nodes_positive_max=1),
        "cohort.nodes_positive_max",
    ),
    ("age_min below 18", _set("cohort.age_min", 12), "cohort.age_min"),
    ("horizon 0", _set("horizon_years", 0), "horizon_years"),
    ("negative seed", _set("seed", -1), "seed"),
    ("empty name", _set("name", ""), "name"),
    ("unknown parameter", _set("parameters", {"no_such": {"thing": 1.0}}), "parameters.no_such.thing"),
    (
        "parameter out of range",
        _set("parameters", {"dissemination": {"gamma": 3.0}}),
        "parameters.dissemination.gamma",
    ),
    (
        "parameter not a number",
        _set("parameters", {"dissemination.gamma": "high"}),
        "parameters.dissemination.gamma",
    ),
    (
        "from_months > until_months",
        _set("followup.exams.0.from_months", 300),
        "followup.exams.0.until_months",
    ),
    ("window_days a string", _set("staging.window_days", "90"), "staging.window_days"),
    ("window_days a boolean", _set("staging.window_days", True), "staging.window_days"),
    ("missing cohort", _drop("cohort"), "cohort"),
    ("missing subtype mix", _drop("cohort.subtype_mix"), "cohort.subtype_mix"),
    (
        "normal age without sd",
        _set("cohort.age", {"distribution": "normal", "mean_years": 60}),
        "cohort.age.sd_years",
    ),
    ("unknown age distribution", _set("cohort.age", {"distribution": "gamma"}), "cohort.age.distribution"),
    (
        "uniform age min == max",
        _set("cohort.age", {"distribution": "uniform", "min_years": 50, "max_years": 50}),
        "cohort.age.max_years",
    ),
    (
        "seer age with extra key",
        _set("cohort.age", {"distribution": "seer", "mean_years": 60}),
        "cohort.age.mean_years",
    ),
    (
        "unknown chemotherapy policy",
        _set("treatment.early.adjuvant_chemotherapy", "some"),
        "treatment.early.adjuvant_chemotherapy",
    ),
    (
        "sbrt lesions 0",
        _set("treatment.metastatic.sbrt_max_lesions", 0),
        "treatment.metastatic.sbrt_max_lesions",
    ),
    ("exams not a list", _set("followup.exams", {"modality": "ct"}), "followup.exams"),
    ("restaging not a table", _set("restaging", "ct"), "restaging"),
    ("unknown eligibility stage", _set("cohort.clinical_stages", ["V"]), "cohort.clinical_stages.0"),
]


@pytest.mark.parametrize(("what", "mutate", "field"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed(what: str, mutate: Callable[[dict[str, Any]], None], field: str) -> None:
    raw = default_raw()
    mutate(raw)
    with pytest.raises(InputError) as info:
        validate(raw)
    assert info.value.field == field, f"{what}: {info.value}"
    assert info.value.message


def test_messages_state_the_rule_and_the_value() -> None:
    def message(mutate: Callable[[dict[str, Any]], None]) -> str:
        raw = default_raw()
        mutate(raw)
        with pytest.raises(InputError) as info:
            validate(raw)
        return info.value.message

    assert message(_set("followup.exams.0.every_months", -3)) == "must be > 0 and <= 120 (got -3)"
    assert message(_set("followup.exams.0.bogus", 1)) == (
        "unknown key (allowed: modality, every_months, from_months, until_months)"
    )
    msg = message(_set("staging.modalities", ["xray"]))
    assert msg.startswith("must be one of clinical_exam, mammography,") and msg.endswith("(got 'xray')")
    assert "sum to 1" in message(_set("cohort.subtype_mix.luminal_a", 0.4)) and "0.9" in message(
        _set("cohort.subtype_mix.luminal_a", 0.4)
    )
    assert "all, by_risk, none" in message(_set("treatment.early.adjuvant_chemotherapy", "x"))


def test_eligibility_and_partial_mix() -> None:
    raw = default_raw()
    raw["cohort"].update(
        subtype_mix={"luminal_a": 0.6, "luminal_b": 0.4},
        clinical_stages=["I", "II"],
        age_min=18,
        age_max=70,
        nodes_positive_max=0,
        subtypes=["luminal_a"],
        age={"distribution": "uniform", "min_years": 40, "max_years": 70},
    )
    cohort = validate(raw).cohort
    assert cohort.subtype_mix["triple_negative"] == 0.0 and list(cohort.subtype_mix) == list(
        scenario.SUBTYPES
    )
    assert cohort.age_max == 70 and cohort.nodes_positive_max == 0 and cohort.t_stages is None


def test_parameters_nested_and_dotted_forms() -> None:
    raw = default_raw()
    raw["parameters"] = {"dissemination": {"gamma": 0.7}, "dissemination.mu": 1e-4}
    sc = validate(raw)
    assert sc.parameters == {"dissemination.gamma": 0.7, "dissemination.mu": 1e-4}
    values = sc.parameter_values()
    assert values["dissemination.gamma"] == 0.7 and values["dissemination.mu"] == 1e-4
    raw["parameters"] = {"dissemination": {"gamma": 0.7}, "dissemination.gamma": 0.8}
    with pytest.raises(InputError) as info:
        validate(raw)
    assert info.value.field == "parameters"


def test_not_a_table() -> None:
    bad: object
    for bad in (None, [], "x", 3):
        with pytest.raises(InputError):
            validate(bad)  # type: ignore[arg-type]


# --- loading and --set --------------------------------------------------------------------------------
def test_set_scalar_and_string() -> None:
    sc = load_scenario("default", ["horizon_years=10", "name=my-run", "seed=7"])
    assert sc.horizon_years == 10 and sc.name == "my-run" and sc.seed == 7


def test_set_list_value() -> None:
    sc = load_scenario("default", ['staging.modalities=["pet_ct"]', "staging.rules=[]"])
    assert sc.staging.modalities == ["pet_ct"] and sc.staging.rules == []


def test_set_list_index_and_append() -> None:
    sc = load_scenario(
        "default",
        [
            "followup.exams.0.every_months=6",
            "followup.exams.1.modality=ct",
            "followup.exams.1.every_months=24",
        ],
    )
    assert sc.followup.exams[0].every_months == 6 and sc.followup.exams[0].from_months == 12
    assert sc.followup.exams[1].modality == "ct" and sc.followup.exams[1].from_months == 24


def test_set_creates_tables() -> None:
    sc = load_scenario(
        "default", ['cohort.age.distribution="normal"', "cohort.age.mean_years=55", "cohort.age.sd_years=10"]
    )
    assert sc.cohort.age.distribution == "normal"


def test_set_parameter() -> None:
    sc = load_scenario("default", ["parameters.dissemination.gamma=0.7"])
    assert sc.parameters == {"dissemination.gamma": 0.7}
    assert sc.parameter_values()["dissemination.gamma"] == 0.7
    with pytest.raises(InputError) as info:
        load_scenario("default", ["parameters.dissemination.gamma=0.1"])
    assert info.value.field == "parameters.dissemination.gamma"


@pytest.mark.parametrize("item", ["horizon_years", "=3", "followup.exams.5.modality=ct", "name.first=x"])
def test_set_malformed(item: str) -> None:
    with pytest.raises(InputError) as info:
        load_scenario("default", [item])
    assert info.value.field == "--set"


def test_set_invalid_value_names_the_field() -> None:
    with pytest.raises(InputError) as info:
        load_scenario("default", ["followup.exams.0.every_months=-3"])
    assert info.value.field == "followup.exams.0.every_months"


def test_load_from_file(tmp_path: Any) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(scenario.scenario_text("default").replace('name = "default"', 'name = "mine"'))
    assert load_scenario(str(path)).name == "mine"
    path.write_text("name = \n")
    with pytest.raises(InputError) as info:
        load_scenario(str(path))
    assert info.value.field == "scenario" and "line 1" in info.value.message
    with pytest.raises(InputError) as info:
        load_scenario(str(tmp_path / "absent.toml"))
    assert info.value.field == "scenario" and "default" in info.value.message


# --- property: garbage in, InputError out -------------------------------------------------------------
WORDS = [
    "seer",
    "normal",
    "uniform",
    "ct",
    "pet_ct",
    "III",
    "IV",
    "T1",
    "N0",
    "luminal_a",
    "distribution",
    "modality",
    "every_months",
    "dissemination.gamma",
    "dissemination",
    "gamma",
    "",
    "0",
    "[key]",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(WORDS)
    | st.floats(min_value=-5, max_value=700)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.sampled_from(WORDS), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*prefix, index))


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for seg in path:
        node = node[seg]
    return node


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.data())
def test_validate_never_crashes(data: st.DataObject) -> None:
    raw = default_raw()
    raw["parameters"] = {"dissemination": {"gamma": 0.7}}
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        path = data.draw(st.sampled_from(list(_paths(raw))), label="path")
        op = data.draw(st.sampled_from(["replace", "insert", "drop"]), label="op")
        if not path:  # the root: only insert
            op = "insert"
        parent = _get(raw, path[:-1]) if path else None
        if op == "replace":
            parent[path[-1]] = data.draw(values, label="value")  # type: ignore[index]
        elif op == "drop":
            del parent[path[-1]]  # type: ignore[union-attr]
        else:
            target = _get(raw, path)
            if isinstance(target, dict):
                target[data.draw(st.text(max_size=6) | st.sampled_from(WORDS), label="key")] = data.draw(
                    values
                )
            elif isinstance(target, list):
                target.append(data.draw(values, label="item"))
    snapshot = copy.deepcopy(raw)
    try:
        result = validate(raw)
    except InputError as exc:
        assert exc.field and isinstance(exc.message, str)
    else:
        assert isinstance(result, Scenario)
        assert validate(result.to_toml_dict()) == result
    assert raw == snapshot  # validate does not modify its input
