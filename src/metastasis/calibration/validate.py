"""``metastasis validate``: every target row, published against simulated, with the tolerance rule.

The rule (``data/targets/README.md``): a row passes when the simulated value lies within the published
95 % interval where one is given (the GBSG2 Kaplan-Meier bands); otherwise, for percentages, within
max(2 simulation standard errors + 10 % relative, 2 percentage points) of the published value; for
times, durations and ratios within 15 % relative, for hazard and odds ratios within 25 % relative.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from metastasis.errors import InputError

if TYPE_CHECKING:
    from metastasis.calibration.settings import Simulations

#: Relative tolerance by kind of figure (percentages have their own rule).
RELATIVE = {"time": 0.15, "ratio": 0.15, "hazard_or_odds_ratio": 0.25}
PERCENT_RELATIVE, PERCENT_FLOOR_POINTS, PERCENT_SE_MULTIPLE = 0.10, 2.0, 2.0


def tolerance_interval(kind: str, published: float, se: float = math.nan, low: float = math.nan,
                       high: float = math.nan) -> tuple[float, float]:
    """The interval a simulated value must lie in to pass (targets README)."""
    if kind == "band":
        return low, high
    if kind == "percent":
        half = max(PERCENT_SE_MULTIPLE * (0.0 if math.isnan(se) else se) + PERCENT_RELATIVE * abs(published),
                   PERCENT_FLOOR_POINTS)
    elif kind in RELATIVE:
        half = RELATIVE[kind] * abs(published)
    else:
        raise ValueError(f"unknown kind of target {kind!r}")
    return published - half, published + half


def distance_scale(kind: str, published: float, low: float = math.nan, high: float = math.nan) -> float:
    """The tolerance half-width without the simulation error: the scale of a row in the ABC distance."""
    if kind == "band":
        return max((high - low) / 2.0, 1e-9)
    if kind == "percent":
        return max(PERCENT_RELATIVE * abs(published), PERCENT_FLOOR_POINTS)
    return max(RELATIVE[kind] * abs(published), 1e-9)


def judge(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (:func:`.targets.emulate`) with ``difference``, ``tolerance_low``, ``tolerance_high``,
    ``tolerance`` (the rule as text) and ``pass``; a NaN simulated value fails."""
    out = rows.copy()
    bounds = [tolerance_interval(r.kind, r.published, r.se, r.low, r.high) for r in rows.itertuples()]
    out["tolerance_low"] = [b[0] for b in bounds]
    out["tolerance_high"] = [b[1] for b in bounds]
    out["difference"] = out["simulated"] - out["published"]
    out["pass"] = (out["simulated"] >= out["tolerance_low"]) & (out["simulated"] <= out["tolerance_high"])
    out["tolerance"] = [_rule_text(r.kind, lo, hi) for r, (lo, hi) in zip(rows.itertuples(), bounds, strict=True)]
    return out


def tolerance_position(table: pd.DataFrame) -> pd.Series:
    """Where each simulated value lies in its row's tolerance: 0 at the published value, -1 and +1 at the
    lower and upper bounds (each side scaled by its own half-width, so a row passes exactly when the
    position is within [-1, 1]); NaN where nothing was simulated."""
    diff = table["simulated"] - table["published"]
    upper = table["tolerance_high"] - table["published"]
    lower = table["published"] - table["tolerance_low"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.where(diff >= 0, diff / upper, diff / lower)
    return pd.Series(pos, index=table.index, name="position")


def _rule_text(kind: str, low: float, high: float) -> str:
    if kind == "band":
        return f"KM 95% band [{low:.1f}, {high:.1f}]"
    if kind == "percent":
        return f"±{(high - low) / 2:.2f} pp"
    return f"±{RELATIVE[kind]:.0%}"


def run_validation(patients: int = 20_000, params: Mapping[str, float] | None = None,
                   progress: bool = True, seed: int | None = None) -> pd.DataFrame:
    """Simulate every setting with ``patients`` as base count and judge every target row; ``seed``
    replaces the scenarios' own seed (a second seed shows how much of the table is sampling noise)."""
    return validation_and_simulations(patients, params, progress, seed)[0]


def validation_and_simulations(patients: int = 20_000, params: Mapping[str, float] | None = None,
                               progress: bool = True, seed: int | None = None,
                               scenario_overrides: tuple[str, ...] = ()) -> tuple[pd.DataFrame, Simulations]:
    """:func:`run_validation`'s table and the simulated settings it was computed from (for figures);
    ``scenario_overrides`` (``--set`` items) apply to every setting."""
    from metastasis.calibration.targets import emulate_with, simulations

    if patients < 100:
        raise InputError("--patients", f"must be at least 100 (got {patients})")
    start = time.monotonic()

    def note(name: str) -> None:
        if progress and sys.stderr.isatty():
            sys.stderr.write(f"\rsimulating {name:<20} ({time.monotonic() - start:,.0f} s) ")
            sys.stderr.flush()

    sims = simulations(params, patients, on_simulate=note, seed=seed, scenario_overrides=scenario_overrides)
    try:
        return judge(emulate_with(sims)), sims
    finally:
        if progress and sys.stderr.isatty():
            sys.stderr.write("\r" + " " * 50 + "\r")


def format_number(x: float, unit: str) -> str:
    """A published or simulated value as the table prints it (n/a for NaN)."""
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    return f"{x:.1f}" if unit.startswith(("percent", "days", "months")) and abs(x) >= 10 else f"{x:.2f}"


def format_table(table: pd.DataFrame) -> str:
    """The validation table as aligned text, one line per target row, and a count of passes."""
    head = f"{'target':<31} {'row':<58} {'published':>9} {'simulated':>9} {'diff':>8} {'tolerance':<26} {'n':>6}  pass"
    lines = [head, "-" * len(head)]
    for r in table.to_dict(orient="records"):
        unit = str(r["unit"])
        published, simulated, difference = (format_number(r[k], unit) for k in ("published", "simulated", "difference"))
        lines.append(f"{r['target']:<31} {r['row']:<58} {published:>9} {simulated:>9} {difference:>8} "
                     f"{r['tolerance']:<26} {r['n']:>6}  {'PASS' if r['pass'] else 'fail'}")
    passed = int(table["pass"].sum())
    lines.append(f"{passed} of {len(table)} rows pass")
    return "\n".join(lines)


def table_json(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The validation table as JSON-ready records (NaN as null)."""
    cols = ["target", "row", "published", "simulated", "difference", "se", "unit", "kind", "tolerance",
            "tolerance_low", "tolerance_high", "pass", "n", "setting"]
    records = []
    for rec in table[cols].to_dict(orient="records"):
        records.append({k: (None if isinstance(v, float) and not np.isfinite(v) else
                            bool(v) if k == "pass" else int(v) if k == "n" else v) for k, v in rec.items()})
    return records
