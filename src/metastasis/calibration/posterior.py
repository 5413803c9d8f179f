"""The posterior sample shipped with the package, and ``simulate --posterior-draws K``.

The sample is ``data/calibration/posterior.parquet`` (the ``posterior.parquet`` that ``metastasis
calibrate`` writes: one column per calibrated parameter, natural scale, and ``weight``). With
``--posterior-draws K`` the scenario runs K times, draw *k* with the calibrated parameters of one
particle (K particles drawn by weight without replacement, fixed by the seed; a ``--set`` of a
calibrated parameter still wins): ``DIR/draw-000`` ... each a complete run, and ``DIR/run.json`` listing
them. ``--posterior FILE`` draws from another sample of the same form instead (a user's own
calibration). ``summary`` of such a DIR gives every figure as ``{"median", "low", "high"}`` over the
draws (2.5 % and 97.5 % quantiles).
"""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metastasis import __version__
from metastasis.errors import InputError
from metastasis.parameters import CALIBRATED

#: Where the shipped sample lives inside the package (a test may point it elsewhere).
SAMPLE = "data/calibration/posterior.parquet"
HOW_TO_MAKE = ("run `metastasis calibrate --out DIR` and pass --posterior DIR/posterior.parquet, or copy it to "
               "src/metastasis/data/calibration/posterior.parquet (README: Validation and calibration)")


def sample_path() -> Path | None:
    """The shipped posterior sample, or None when this version ships none."""
    path = Path(str(resources.files("metastasis").joinpath(SAMPLE)))
    return path if path.is_file() else None


def load_sample(path: Path | None = None) -> pd.DataFrame:
    """The posterior sample: calibrated parameter columns and ``weight`` (normalised)."""
    option = "--posterior-draws" if path is None else "--posterior"
    path = path if path is not None else sample_path()
    if path is None:
        raise InputError(option, "no posterior sample is shipped with this version; to make one, " + HOW_TO_MAKE)
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # missing, a directory, or not Parquet
        raise InputError(option, f"cannot read a posterior sample from {path} ({type(exc).__name__})") from None
    missing = [c for c in (*CALIBRATED, "weight") if c not in frame.columns]
    if missing:
        raise InputError(option, f"the posterior sample {path} lacks {', '.join(missing)}")
    if len(frame) == 0 or not (frame["weight"] >= 0).all() or not frame["weight"].sum() > 0:
        raise InputError(option, f"the posterior sample {path} needs particles with weights >= 0, not all 0")
    frame = frame[[*CALIBRATED, "weight"]].copy()
    frame["weight"] = frame["weight"] / frame["weight"].sum()
    return frame


def draw(sample: pd.DataFrame, k: int, seed: int) -> list[dict[str, float]]:
    """``k`` particles drawn by weight without replacement (as parameter dicts), fixed by ``seed``."""
    if k < 1:
        raise InputError("--posterior-draws", f"must be at least 1 (got {k})")
    if k > len(sample):
        raise InputError("--posterior-draws", f"must be at most the {len(sample)} particles of the sample (got {k})")
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(sample), size=k, replace=False, p=sample["weight"].to_numpy())
    return [{name: float(sample.iloc[int(r)][name]) for name in CALIBRATED} for r in rows]


def simulate_draws(req: Any, k: int, path: Path | None = None) -> dict[str, Any]:
    """Run ``req`` (a :class:`metastasis.runner.RunRequest`) once per posterior draw into
    ``req.out/draw-<k>``; write and return ``req.out/run.json`` listing the draws."""
    from metastasis import runner

    particles = draw(load_sample(path), k, req.scenario.seed)
    out: Path = req.out
    out.mkdir(parents=True, exist_ok=True)
    run_json = out / "run.json"
    if run_json.exists() and not req.force and not req.resume:
        info = json.loads(run_json.read_text(encoding="utf-8"))
        if info.get("status") == "complete":
            raise InputError("--out", f"{out} already holds a finished run (use --force to overwrite)")
    names = []
    for i, particle in enumerate(particles):
        name = f"draw-{i:03d}"
        names.append(name)
        done = out / name / "run.json"
        if req.resume and done.is_file() and json.loads(done.read_text(encoding="utf-8")).get("status") == "complete":
            continue  # finished before the interruption
        scenario = req.scenario.model_copy(update={"parameters": {**particle, **req.scenario.parameters}})
        runner.run(replace(req, scenario=scenario, out=out / name))
    info = {"package": "metastasis", "package_version": __version__, "status": "complete",
            "posterior_draws": k, "posterior": "shipped" if path is None else str(path),
            "draws": names, "seed": req.scenario.seed, "patients": req.patients,
            "scenario": req.scenario.to_toml_dict(), "draw_parameters": particles}
    runner.write_json(run_json, info)
    return info


def is_draws_run(directory: Path) -> bool:
    """Whether ``directory`` holds the draws of ``simulate --posterior-draws``."""
    run_json = directory / "run.json"
    if not run_json.is_file():
        return False
    try:
        return "posterior_draws" in json.loads(run_json.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False


def _interval(values: list[Any]) -> Any:
    """Median and 95 % interval of numbers; nested dicts key by key; anything else as in the first draw."""
    first = values[0]
    if isinstance(first, dict):
        keys = [k for k in first if all(isinstance(v, dict) and k in v for v in values)]
        return {k: _interval([v[k] for v in values]) for k in keys}
    if isinstance(first, int | float) and not isinstance(first, bool):
        numbers = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
        if np.all(np.isnan(numbers)):
            return None
        low, median, high = np.nanquantile(numbers, [0.025, 0.5, 0.975])
        return {"median": float(median), "low": float(low), "high": float(high)}
    return first


def summary(directory: Path) -> dict[str, Any]:
    """The headline figures of every draw, each as its median and 95 % interval over the draws."""
    from metastasis import analysis

    info = json.loads((directory / "run.json").read_text(encoding="utf-8"))
    per_draw = [analysis.summary(directory / name) for name in info["draws"]]
    out = _interval(per_draw)
    out["posterior_draws"] = len(per_draw)
    return dict(out)


def _is_interval(v: Any) -> bool:
    return isinstance(v, dict) and set(v) == {"median", "low", "high"}


def _show(v: Any) -> str:
    if _is_interval(v):
        def num(x: float) -> str:
            return f"{x:.4f}" if abs(x) < 10 else f"{x:,.1f}"
        return f"{num(v['median'])}  [{num(v['low'])}, {num(v['high'])}]"
    return "n/a" if v is None else str(v)


def format_summary(s: dict[str, Any]) -> str:
    """The summary over draws as text: median and [2.5 %, 97.5 %] of each figure."""
    lines = [f"{'(median [95% interval over ' + str(s.get('posterior_draws')) + ' posterior draws])':<42}"]
    for key, value in s.items():
        if isinstance(value, dict) and not _is_interval(value):
            lines.append(f"{key}:")
            lines += [f"  {k:<40} {_show(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key:<42} {_show(value)}")
    return "\n".join(lines)
