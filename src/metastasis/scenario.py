"""Scenario files: TOML -> validated :class:`Scenario`, ``--set`` overrides and the built-in scenarios.

A scenario says who is simulated (cohort), how they are staged, restaged and followed up, how they are
treated, and which model parameters differ from their defaults. Times are in the unit named by each key
(``_days``, ``_months``, ``_years``); shares are fractions in [0, 1]. Every problem with a scenario is
reported as one :class:`~metastasis.errors.InputError` naming the dotted field
(``followup.exams.0.every_months``).
"""

from __future__ import annotations

import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic.functional_validators import AfterValidator, model_validator
from pydantic_core import PydanticCustomError

from metastasis.errors import InputError
from metastasis.vocabulary import MODALITIES, N_STAGES, STAGES, SUBTYPES, T_STAGES

#: Clinical stages a staging rule can test: before systemic imaging no patient is stage IV yet.
PRE_IMAGING_STAGES: tuple[str, ...] = STAGES[:3]


def _show(value: Any) -> str:
    """A short TOML-like rendering of a user value for messages."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _choice(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            ctx = {"allowed": ", ".join(allowed), "got": _show(value)}
            raise PydanticCustomError("choice", "must be one of {allowed} (got {got})", ctx)
        return value

    return check


def _unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise PydanticCustomError("duplicate", "must not repeat {got}", {"got": _show(value)})
        seen.add(value)
    return values


Modality = Annotated[str, AfterValidator(_choice(MODALITIES))]
Subtype = Annotated[str, AfterValidator(_choice(SUBTYPES))]
Stage = Annotated[str, AfterValidator(_choice(STAGES))]
PreImagingStage = Annotated[str, AfterValidator(_choice(PRE_IMAGING_STAGES))]
TStage = Annotated[str, AfterValidator(_choice(T_STAGES))]
NStage = Annotated[str, AfterValidator(_choice(N_STAGES))]
ModalityList = Annotated[list[Modality], Field(min_length=1), AfterValidator(_unique)]
StageList = Annotated[list[Stage], Field(min_length=1), AfterValidator(_unique)]
PreImagingStageList = Annotated[list[PreImagingStage], Field(min_length=1), AfterValidator(_unique)]
TStageList = Annotated[list[TStage], Field(min_length=1), AfterValidator(_unique)]
NStageList = Annotated[list[NStage], Field(min_length=1), AfterValidator(_unique)]
SubtypeList = Annotated[list[Subtype], Field(min_length=1), AfterValidator(_unique)]
Share = Annotated[float, Field(ge=0, le=1)]
Age = Annotated[float, Field(ge=18, le=100)]
Count = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    # strict: TOML gives exact types, so "90" is not a number and true is not 1
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _bound(info: ValidationInfo, other: str, value: Any, strict: bool) -> Any:
    """Require ``value`` >= (or > when ``strict``) the already validated field ``other``."""
    low = info.data.get(other)
    if value is not None and low is not None and (value < low or (strict and value == low)):
        raise PydanticCustomError(
            "order", "must be {op} {other} ({low}) (got {got})",
            {"op": ">" if strict else ">=", "other": other, "low": _show(low), "got": _show(value)},
        )
    return value


# --- cohort -------------------------------------------------------------------------------------------
class SeerAge(_Model):
    """Age at diagnosis from the SEER incidence age distribution (no other keys)."""

    distribution: Literal["seer"]


class NormalAge(_Model):
    """Age at diagnosis ~ Normal(mean, sd), truncated to [18, 100] years."""

    distribution: Literal["normal"]
    mean_years: Age = Field(description="mean age, years")
    sd_years: float = Field(gt=0, le=40, description="standard deviation, years")


class UniformAge(_Model):
    """Age at diagnosis ~ Uniform(min, max) years."""

    distribution: Literal["uniform"]
    min_years: Age = Field(description="youngest age, years")
    max_years: Age = Field(description="oldest age, years; > min_years")

    @field_validator("max_years")
    @classmethod
    def _order(cls, value: float, info: ValidationInfo) -> float:
        return _bound(info, "min_years", value, True)


AgeDistribution = Annotated[SeerAge | NormalAge | UniformAge, Field(discriminator="distribution")]
_AGES: dict[str, type[_Model]] = {"seer": SeerAge, "normal": NormalAge, "uniform": UniformAge}


class Cohort(_Model):
    """Who is simulated: age and subtype mix, and optional eligibility criteria (None = no restriction).

    The cohort is conditioned on the eligibility criteria, like a trial's entry criteria.
    """

    age: AgeDistribution = Field(default_factory=lambda: SeerAge(distribution="seer"))
    subtype_mix: dict[Subtype, Share] = Field(description="share of each subtype; missing = 0; sums to 1")
    clinical_stages: StageList | None = Field(default=None, description="clinical stage found by staging")
    t_stages: TStageList | None = None
    n_stages: NStageList | None = None
    subtypes: SubtypeList | None = None
    age_min: Age | None = Field(default=None, description="youngest eligible age, years")
    age_max: Age | None = Field(default=None, description="oldest eligible age, years")
    nodes_positive_min: Count | None = Field(default=None, description="fewest positive axillary nodes")
    nodes_positive_max: Count | None = Field(default=None, description="most positive axillary nodes")

    @property
    def restricts_eligibility(self) -> bool:
        """Whether some candidates are not eligible (without criteria every candidate is a patient)."""
        return any(getattr(self, name) is not None for name in (
            "clinical_stages", "t_stages", "n_stages", "subtypes", "age_min", "age_max", "nodes_positive_min",
            "nodes_positive_max"))

    @field_validator("subtype_mix")
    @classmethod
    def _full_mix(cls, mix: dict[str, float]) -> dict[str, float]:
        total = math.fsum(mix.values())
        if abs(total - 1.0) > 1e-6:
            raise PydanticCustomError("sum", "must sum to 1 (got {total})", {"total": f"{total:.6g}"})
        return {name: mix.get(name, 0.0) for name in SUBTYPES}

    @field_validator("age_max", "nodes_positive_max")
    @classmethod
    def _order(cls, value: Any, info: ValidationInfo) -> Any:
        return _bound(info, str(info.field_name).replace("max", "min"), value, False)


# --- staging, restaging, follow-up --------------------------------------------------------------------
class RuleCondition(_Model):
    """When a staging rule applies: when ANY of the given conditions holds (at least one is given).

    ``clinical_stage`` is the stage from T and N before systemic imaging (so I-III); ``symptoms = true``
    holds for a patient with symptoms at presentation, ``false`` for one without.
    """

    clinical_stage: PreImagingStageList | None = None
    t_stage: TStageList | None = None
    n_stage: NStageList | None = None
    symptoms: bool | None = None

    @model_validator(mode="after")
    def _some(self) -> RuleCondition:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            names = ", ".join(type(self).model_fields)
            raise PydanticCustomError("empty_rule", "needs at least one of {names}", {"names": names})
        return self

    def holds(self, clinical_stage: str, t_stage: str, n_stage: str, symptoms: bool) -> bool:
        """Whether the condition holds for a patient (ANY given condition)."""
        return (
            (self.clinical_stage is not None and clinical_stage in self.clinical_stage)
            or (self.t_stage is not None and t_stage in self.t_stage)
            or (self.n_stage is not None and n_stage in self.n_stage)
            or (self.symptoms is not None and symptoms == self.symptoms)
        )


class StagingRule(_Model):
    """Extra staging modalities (``add``) for the patients matching ``when``."""

    when: RuleCondition
    add: ModalityList


class Staging(_Model):
    """The work-up at day 0, before surgery."""

    modalities: ModalityList = Field(description="for every patient")
    window_days: float = Field(default=90.0, ge=0, le=365, description="found within it = at diagnosis, days")
    rules: list[StagingRule] = Field(default_factory=list)


class Restaging(_Model):
    """Work-up after a distant finding, then repeated at this interval while metastatic."""

    modalities: ModalityList
    every_months: float = Field(default=3.0, gt=0, le=24, description="interval, months")


class FollowupExam(_Model):
    """A scheduled follow-up exam at ``from_months``, then every ``every_months`` until ``until_months``."""

    modality: Modality
    every_months: float = Field(gt=0, le=120, description="interval, months")
    from_months: float = Field(ge=0, le=600, description="first exam, months; default every_months")
    until_months: float = Field(default=240.0, ge=0, le=600, description="no exam after this, months")

    @model_validator(mode="before")
    @classmethod
    def _default_from(cls, data: Any) -> Any:
        if isinstance(data, dict) and "from_months" not in data and "every_months" in data:
            return {**data, "from_months": data["every_months"]}
        return data

    @field_validator("until_months")
    @classmethod
    def _order(cls, value: float, info: ValidationInfo) -> float:
        return _bound(info, "from_months", value, False)


class Followup(_Model):
    """Clinic visits (history and examination; symptoms are reported here or sooner) and exams."""

    clinic_visit_every_months: float = Field(default=12.0, gt=0, le=60, description="interval, months")
    clinic_visit_until_months: float = Field(default=120.0, ge=0, le=600, description="last visit, months")
    exams: list[FollowupExam] = Field(default_factory=list)


# --- treatment ----------------------------------------------------------------------------------------
class EarlyTreatment(_Model):
    """Treatment of stage I-III disease."""

    breast_conserving_share: Share = Field(default=0.65, description="of stage I-III; the rest mastectomy")
    positive_margin_share: Share = Field(default=0.15, description="of breast-conserving surgery")
    radiotherapy_after_bcs: bool = True
    adjuvant_chemotherapy: Literal["all", "by_risk", "none"] = "by_risk"
    endocrine_years: float = Field(default=5.0, ge=0, le=15, description="HR+ only, years; 0 = none")
    anti_her2: bool = Field(default=True, description="HER2+ only")


class MetastaticTreatment(_Model):
    """Treatment of distant disease."""

    systemic_lines_max: int = Field(default=4, ge=0, le=10, description="lines of systemic therapy")
    palliative_radiotherapy_bone: bool = True
    sbrt_oligometastatic: bool = False
    sbrt_max_lesions: int = Field(default=5, ge=1, le=10, description="most lesions treated by SBRT")
    liver_resection: bool = True


class Treatment(_Model):
    early: EarlyTreatment = Field(default_factory=EarlyTreatment)
    metastatic: MetastaticTreatment = Field(default_factory=MetastaticTreatment)


# --- scenario -----------------------------------------------------------------------------------------
def _flatten(table: Mapping[Any, Any], prefix: str, out: dict[Any, Any]) -> None:
    for key, value in table.items():
        name = f"{prefix}{key}" if prefix else key
        if isinstance(value, Mapping):
            _flatten(value, f"{name}.", out)
        elif name in out:
            raise PydanticCustomError("duplicate", "parameter {got} given twice", {"got": _show(name)})
        else:
            out[name] = value


class Scenario(_Model):
    """A complete scenario. ``parameters`` holds overrides by flattened dotted name only."""

    name: str = Field(min_length=1)
    description: str = ""
    horizon_years: float = Field(default=20.0, gt=0, le=60, description="simulated time, years")
    seed: int = Field(default=1, ge=0, le=2**63 - 1)
    cohort: Cohort
    staging: Staging
    restaging: Restaging
    followup: Followup = Field(default_factory=Followup)
    treatment: Treatment = Field(default_factory=Treatment)
    parameters: dict[str, float] = Field(default_factory=dict, description="overrides by dotted name")

    @field_validator("parameters", mode="before")
    @classmethod
    def _flat(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        out: dict[Any, Any] = {}
        _flatten(value, "", out)
        return out

    @field_validator("parameters")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        from metastasis import parameters

        parameters.resolve(value)  # InputError(parameters.<name>) is passed on by validate()
        return value

    def parameter_values(self) -> dict[str, float]:
        """Every model parameter's value: the defaults updated by this scenario's overrides."""
        from metastasis import parameters

        return dict(parameters.resolve(self.parameters))

    def to_toml_dict(self) -> dict[str, Any]:
        """Plain data (no None) that TOML or JSON can hold and :func:`validate` reads back."""
        return self.model_dump(mode="json", exclude_none=True)


# --- errors -------------------------------------------------------------------------------------------
_UNIONS = (typing.Union, types.UnionType)


def _walk(loc: tuple[Any, ...]) -> tuple[list[str], Any, list[Any]]:
    """The dotted path of a pydantic location (without union tags), and the type and metadata there."""
    tp: Any = Scenario
    meta: list[Any] = []
    path: list[str] = []
    for seg in (s for s in loc if s != "[key]"):
        tp = _unwrap(tp)[0]
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(seg))
            tp, meta = (field.annotation, list(field.metadata)) if field else (None, [])
        elif typing.get_origin(tp) in _UNIONS:  # the age union, tagged by its distribution: seg is the tag
            tp = _AGES.get(str(seg))
            continue
        else:
            tp, meta = (typing.get_args(tp)[-1] if typing.get_origin(tp) in (list, dict) else None), []
        path.append(str(seg))
    tp, more = _unwrap(tp)
    return path, tp, meta + more


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """Strip Annotated and Optional, collecting constraint metadata."""
    meta: list[Any] = []
    while True:
        args = typing.get_args(tp)
        if typing.get_origin(tp) is Annotated:
            tp = args[0]
            meta += [m for a in args[1:] for m in (a.metadata if isinstance(a, FieldInfo) else [a])]
        elif typing.get_origin(tp) in _UNIONS and len(args) == 2 and type(None) in args:
            tp = args[0] if args[1] is type(None) else args[1]
        else:
            return tp, meta


_TYPES = {"float": "a number", "int": "an integer", "bool": "true or false", "string": "a string",
          "list": "a list", "finite_number": "a finite number"}
_OPS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="),
        (annotated_types.Lt, "lt", "<"), (annotated_types.Le, "le", "<="))


def _message(err: Mapping[str, Any], path: list[str], tp: Any, meta: list[Any]) -> tuple[list[str], str]:
    kind, ctx, given = err["type"], err.get("ctx") or {}, err.get("input")
    got = f"(got {_show(given)})"
    if kind == "extra_forbidden":
        parent = _walk(tuple(err["loc"][:-1]))[1]
        allowed = ", ".join(getattr(parent, "model_fields", {}))
        return path, f"unknown key (allowed: {allowed})"
    if kind in ("missing", "invalid_key"):
        return path, "required key is missing" if kind == "missing" else f"keys must be strings {got}"
    if kind == "choice" and err["loc"][-1] == "[key]":
        return path, f"unknown key (allowed: {ctx['allowed']})"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bounds = [f"{sym} {_show(getattr(m, a))}" for m in meta for cls, a, sym in _OPS if isinstance(m, cls)]
        bounds = bounds or [f"{sym} {_show(ctx[a])}" for _, a, sym in _OPS if a in ctx]
        return path, f"must be {' and '.join(bounds)} {got}"
    if kind == "literal_error":
        allowed = ", ".join(str(a) for a in typing.get_args(tp)) or ctx.get("expected", "")
        return path, f"must be one of {allowed} {got}"
    if kind == "union_tag_invalid":
        return [*path, "distribution"], f"must be one of {', '.join(_AGES)} (got {ctx.get('tag')!r})"
    if kind == "union_tag_not_found":
        return path, f"needs a 'distribution' key (one of {', '.join(_AGES)})"
    if kind in ("too_short", "string_too_short"):
        return path, f"must not be empty {got}"
    if kind.endswith(("_type", "_parsing", "_from_float")) or kind == "finite_number":
        base = kind.removesuffix("_type").removesuffix("_parsing").removesuffix("_from_float")
        what = _TYPES.get(base) or _TYPES.get(kind) or "a table"
        return path, f"must be {what} {got}"
    if kind in ("choice", "duplicate", "sum", "order", "empty_rule"):
        return path, str(err["msg"])
    return path, f"{err['msg']} {got}"


def validate(raw: Mapping[str, Any]) -> Scenario:
    """Validate a scenario given as plain data (a parsed TOML document); raise one InputError."""
    if not isinstance(raw, Mapping):
        raise InputError("scenario", f"must be a table (got {_show(raw)})")
    try:
        return Scenario.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, InputError):
            raise InputError(cause.field, cause.message) from None
        try:
            path, message = _message(err, *_walk(tuple(err["loc"])))
        except Exception:  # a location the walker cannot follow: name it as pydantic does
            path, message = [str(s) for s in err["loc"] if s != "[key]"], str(err["msg"])
        raise InputError(".".join(path) or "scenario", message) from None


# --- built-ins and loading ----------------------------------------------------------------------------
def _builtin_dir() -> Any:
    return resources.files("metastasis") / "data" / "scenarios"


def builtin_names() -> list[str]:
    """Names of the built-in scenarios (file stems in ``data/scenarios``), sorted."""
    return sorted(p.name[:-5] for p in _builtin_dir().iterdir() if p.name.endswith(".toml"))


def builtin_descriptions() -> dict[str, str]:
    """Each built-in scenario's name -> its one-line ``description``."""
    return {name: str(tomllib.loads(scenario_text(name)).get("description", "")) for name in builtin_names()}


def scenario_text(name: str) -> str:
    """The TOML text of a built-in scenario."""
    names = builtin_names()
    if name not in names:
        raise InputError("scenario", f"unknown built-in scenario {name!r} (built-ins: {', '.join(names)})")
    return str((_builtin_dir() / f"{name}.toml").read_text(encoding="utf-8"))


def _read(source: str) -> dict[str, Any]:
    if source in builtin_names():
        text, origin = scenario_text(source), f"built-in {source!r}"
    else:
        path = Path(source)
        if not path.is_file():
            names = ", ".join(builtin_names())
            raise InputError("scenario", f"{source!r} is neither a built-in scenario ({names}) nor a file")
        try:
            text, origin = path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError("scenario", f"cannot read {source}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError("scenario", f"{origin} is not valid TOML: {exc}") from None


def _set(raw: dict[str, Any], item: str) -> None:
    """Apply one ``KEY=VALUE`` override in place (see :func:`load_scenario`)."""
    key, eq, text = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise InputError("--set", f"expected KEY=VALUE (got {item!r})")
    try:
        value: Any = tomllib.loads("v = " + text)["v"]
    except tomllib.TOMLDecodeError:
        value = text
    is_parameter = key.startswith("parameters.")
    segments = ["parameters", key.removeprefix("parameters.")] if is_parameter else key.split(".")
    node: Any = raw
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        fresh: Any = value if last else ([] if segments[i + 1].isdigit() else {})
        where = ".".join(segments[: i + 1])
        if isinstance(node, list):
            if not seg.isdigit() or int(seg) > len(node):
                raise InputError("--set", f"{key}: {where} is not an index of a list of {len(node)}")
            if int(seg) == len(node):
                node.append(fresh)
            elif last:
                node[int(seg)] = value
            node = node[int(seg)]
        elif isinstance(node, dict):
            if seg in node and not last and not isinstance(node[seg], dict | list):
                raise InputError("--set", f"{key}: {where} is not a table or a list")
            if last or seg not in node:
                node[seg] = fresh
            node = node[seg]
        else:
            raise InputError("--set", f"{key}: {'.'.join(segments[:i])} is not a table or a list")


def parameter_table(source: str) -> dict[str, float]:
    """The ``[parameters]`` table of a TOML file (or built-in scenario), in the file's order: refine's
    ``best.toml`` and calibrate's ``chosen.toml`` are such files. Names and ranges are checked."""
    from metastasis import parameters

    if source not in builtin_names() and not Path(source).is_file():
        raise InputError("--parameters", f"{source} is not a file")
    try:
        table = _read(source).get("parameters", {})
    except InputError as exc:
        raise InputError("--parameters", exc.message) from None
    if not isinstance(table, dict) or not table:
        raise InputError("--parameters", f"{source} has no [parameters] table")
    parameters.resolve(table)  # unknown names, non-numbers and values out of range: one-line errors
    return {name: float(value) for name, value in table.items()}


def parameter_overrides(source: str) -> tuple[str, ...]:
    """:func:`parameter_table` as ``parameters.<name>=<value>`` overrides (``--set`` items)."""
    return tuple(f"parameters.{name}={value!r}" for name, value in parameter_table(source).items())


def load_scenario(source: str, overrides: Sequence[str] = ()) -> Scenario:
    """Load a built-in scenario by name, or a TOML file by path, apply ``--set`` overrides and validate.

    Each override is ``KEY=VALUE``: KEY is dotted, integer segments index lists (an index one past the
    end appends), missing tables are created; ``parameters.<name>`` sets the ONE flattened parameter
    ``<name>``. VALUE is read as a TOML value, or taken as a plain string when it is not one.
    """
    raw = _read(source)
    for item in overrides:
        _set(raw, item)
    return validate(raw)
