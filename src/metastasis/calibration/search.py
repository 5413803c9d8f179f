"""Coordinate search of the calibrated parameters: fewer and smaller misses of the validation rows.

ABC-SMC (:mod:`.calibrate`) gives a posterior but needs thousands of model runs. This search is the
cheap complement used to set the shipped defaults: starting from the registry values (or from a file's
``[parameters]`` table, ``--parameters``, whose parameters that are not calibrated stay fixed) it tries, one
parameter at a time, a step up and a step down (on the prior's sampling scale: log10 for log-uniform
priors), keeps a move that lowers the *miss score*, and halves a parameter's step when neither helps.
Every evaluation is ``metastasis validate`` at fixed seeds, so the compared points share their random
numbers and small differences are real; with several seeds (``--seed 1 --seed 2``) a point's score and
rows are the means over them, so that a move must help beyond one seed's sampling noise.

The miss score: a passing row adds nothing; a failing row adds ``0.2`` plus how far it lies beyond its
tolerance, in units of the tolerance's half-width (at most 3, so that one hopeless row does not outweigh
the rest). With the objective ``rows`` a move must pass more rows (means over the seeds), or as many
with a lower miss score: the count the calibration issue's rule is stated in, where the miss score can
fall while rows are lost.

Files in ``out``: ``search.jsonl`` (one line per evaluation pair and per state, appended and flushed:
an interrupted search resumes from its last state line) and ``best.toml`` (the best point as a
scenario's ``[parameters]`` table, with provenance; replaced atomically).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from metastasis import __version__
from metastasis.calibration.calibrate import natural, prior_bounds, sampling_key
from metastasis.errors import InputError
from metastasis.parameters import CALIBRATED, REGISTRY

#: A failing row's base weight in the miss score, and the cap of its distance beyond tolerance.
FAIL_WEIGHT, MISS_CAP = 0.2, 3.0
#: First step of each parameter, as a share of its prior's width on the sampling scale.
FIRST_STEP = 0.12
#: The search stops when every step is below this share of its prior's width.
MIN_STEP = 0.01

Point = dict[str, float]
Score = tuple[float, float]  # (miss score, rows passing), each a mean over the seeds
#: What a move must improve: the miss score alone, or the rows passing first and the miss score on ties.
OBJECTIVES: dict[str, Callable[[Score], tuple[float, ...]]] = {
    "miss": lambda score: (score[0],),
    "rows": lambda score: (-score[1], score[0]),
}


@dataclass(frozen=True)
class SearchRequest:
    """What ``metastasis refine`` was asked to do."""

    out: Path
    patients: int = 10_000
    sweeps: int = 10
    workers: int = 1
    resume: bool = False
    #: a subset of the calibrated parameters to move (default all): for tests and quick experiments
    parameters: tuple[str, ...] | None = None
    quiet: bool = False
    #: seeds each point is validated at (default: the scenarios' own seed)
    seeds: tuple[int, ...] = ()
    #: a key of :data:`OBJECTIVES`
    objective: str = "miss"
    #: ``--parameters``: a TOML file whose [parameters] table sets the starting point of the calibrated
    #: parameters it names and fixes the others it names in every evaluation (default: the registry's)
    start: str | None = None


def miss_score(table: pd.DataFrame) -> float:
    """Sum over failing rows of ``FAIL_WEIGHT`` plus the distance beyond tolerance (capped)."""
    score = 0.0
    for ok, sim, low, high, pub in zip(table["pass"], table["simulated"], table["tolerance_low"],
                                       table["tolerance_high"], table["published"], strict=True):
        if ok:
            continue
        if not math.isfinite(sim):
            score += FAIL_WEIGHT + MISS_CAP
            continue
        beyond = (low - sim) / max(pub - low, 1e-9) if sim < low else (sim - high) / max(high - pub, 1e-9)
        score += FAIL_WEIGHT + min(beyond, MISS_CAP)
    return score


def coordinate_search(evaluate_pair: Callable[[list[Point]], list[Score]], x: Point,
                      bounds: dict[str, tuple[float, float]], step: dict[str, float], sweeps: int,
                      best: Score, objective: str = "miss",
                      ) -> Iterator[tuple[str, Point, dict[str, float], Score, list[Score]]]:
    """Move one coordinate at a time; yields (key, point, steps, best score, the pair tried) after each.

    ``evaluate_pair`` scores the points a step above and below (clipped to ``bounds``); the better of the
    two by ``objective`` (:data:`OBJECTIVES`) is taken if it beats ``best``, otherwise the step of that
    coordinate is halved.
    """
    rank = OBJECTIVES[objective]
    x, step = dict(x), dict(step)
    for _ in range(sweeps):
        for key in step:
            low, high = bounds[key]
            tried = [dict(x, **{key: min(high, x[key] + step[key])}), dict(x, **{key: max(low, x[key] - step[key])})]
            scores = evaluate_pair(tried)
            j = 0 if rank(scores[0]) <= rank(scores[1]) else 1
            if rank(scores[j]) < rank(best):
                x, best = tried[j], scores[j]
            else:
                step[key] /= 2
            yield key, dict(x), dict(step), best, scores
        if all(step[k] < MIN_STEP * (bounds[k][1] - bounds[k][0]) for k in step):
            return


def _evaluate(patients: int, x: Point, seed: int | None = None, fixed: Point | None = None) -> tuple[float, int]:
    from metastasis.calibration.validate import run_validation

    table = run_validation(patients, {**(fixed or {}), **natural(x)}, progress=False, seed=seed)
    return miss_score(table), int(table["pass"].sum())


def _means(results: list[tuple[float, int]], per_point: int) -> list[Score]:
    """Consecutive groups of ``per_point`` results (one per seed) averaged into one score per point."""
    groups = [results[i:i + per_point] for i in range(0, len(results), per_point)]
    return [(math.fsum(r[0] for r in g) / len(g), math.fsum(r[1] for r in g) / len(g)) for g in groups]


def _start(req: SearchRequest, table: dict[str, float]) -> tuple[Point, dict[str, float]]:
    """The starting point (sampling scale) and first steps; ``table``: :func:`start_table` of ``req``."""
    bounds = prior_bounds()
    names = req.parameters if req.parameters is not None else CALIBRATED
    for name in names:
        if name not in CALIBRATED:
            raise InputError("--parameter", f"must be a calibrated parameter (got {name!r})")
    x = {}
    for name in CALIBRATED:
        key, value = sampling_key(name), table.get(name, REGISTRY[name].default)
        x[key] = math.log10(value) if key.startswith("log10:") else value
        low, high = bounds[key]
        if name in table and not low <= x[key] <= high:
            raise InputError(f"parameters.{name}", f"must lie in its prior for refine to move it ({value!r} is "
                                                   "outside)")
    step = {sampling_key(n): FIRST_STEP * (bounds[sampling_key(n)][1] - bounds[sampling_key(n)][0]) for n in names}
    return x, step


def start_table(req: SearchRequest) -> dict[str, float]:
    """The ``[parameters]`` table of ``--parameters`` (empty without it)."""
    from metastasis.scenario import parameter_table

    return parameter_table(req.start) if req.start is not None else {}


def _last_state(log: Path) -> dict[str, Any] | None:
    state = None
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("kind") == "state":
            state = record
    return state


def _toml_seeds(seeds: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(seed) for seed in seeds) + "]" if seeds else '"the scenarios\' own"'


def _write_best(out: Path, x: Point, best: Score, req: SearchRequest, fixed: Point) -> None:
    values = natural(x)
    lines = ["# The best point of a coordinate search of the calibrated parameters (metastasis refine).",
             "# Use it as a scenario's [parameters] table.", "[parameters]"]
    lines += [f'"{name}" = {values[name]!r}' for name in CALIBRATED]
    lines += [f'"{name}" = {value!r}  # held fixed (--parameters)' for name, value in fixed.items()]
    lines += ["", "[provenance]",
              '"targets" = "data/targets/*.csv and the GBSG2 cohort of lifelines (metastasis validate)"',
              f'"date" = "{datetime.now(UTC).isoformat(timespec="seconds")}"',
              f'"package_version" = "{__version__}"',
              f'"validate_patients" = {req.patients}',
              f'"validate_seeds" = {_toml_seeds(req.seeds)}',
              f'"objective" = "{req.objective}"',
              f'"miss_score" = {best[0]!r}', f'"rows_passing" = {best[1]!r}']
    tmp = out / ".best.toml.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out / "best.toml")


def run(req: SearchRequest) -> tuple[Point, Score]:
    """Search (or resume) and return the best point (sampling scale) and its (miss score, rows passing)."""
    if req.patients < 100:
        raise InputError("--patients", f"must be at least 100 (got {req.patients})")
    if req.workers < 1:
        raise InputError("--workers", f"must be at least 1 (got {req.workers})")
    if req.sweeps < 0:
        raise InputError("--sweeps", f"must be at least 0 (0: score the starting point only; got {req.sweeps})")
    if req.objective not in OBJECTIVES:
        raise InputError("--objective", f"must be one of {', '.join(OBJECTIVES)} (got {req.objective!r})")
    if any(seed < 0 for seed in req.seeds) or len(set(req.seeds)) < len(req.seeds):
        raise InputError("--seed", f"must be distinct seeds >= 0 (got {', '.join(map(str, req.seeds))})")
    seeds: tuple[int | None, ...] = req.seeds or (None,)
    table = start_table(req)
    x, step = _start(req, table)
    # the parameters of --parameters that are not calibrated: held at their value in every evaluation
    fixed = {name: value for name, value in table.items() if name not in CALIBRATED}
    req.out.mkdir(parents=True, exist_ok=True)
    log_path = req.out / "search.jsonl"
    state = _last_state(log_path) if req.resume and log_path.exists() else None
    if req.resume and state is None:
        raise InputError("--resume", f"no search state in {log_path}")
    if state is not None and list(state.get("seeds", [])) != list(req.seeds):
        raise InputError("--seed", f"the search in {log_path} used seeds {state.get('seeds', [])}: resume with "
                                   "the same --seed options")
    if state is not None and state.get("objective", "miss") != req.objective:
        raise InputError("--objective", f"the search in {log_path} used objective {state.get('objective', 'miss')}: "
                                        "resume with the same --objective")
    if state is not None and dict(state.get("fixed", {})) != fixed:
        raise InputError("--parameters", f"the search in {log_path} held {state.get('fixed', {})} fixed: resume "
                                         "with the same --parameters file")
    if not req.resume and log_path.exists():
        raise InputError("--out", f"{log_path} exists: use --resume to continue it, or another --out")
    start = time.monotonic()
    with ProcessPoolExecutor(req.workers) as pool, log_path.open("a", encoding="utf-8") as log:

        def note(**record: object) -> None:
            log.write(json.dumps(record) + "\n")
            log.flush()

        def pair(points: list[Point]) -> list[Score]:
            jobs = [(point, seed) for point in points for seed in seeds]
            results = pool.map(_evaluate, [req.patients] * len(jobs), [j[0] for j in jobs], [j[1] for j in jobs],
                               [fixed] * len(jobs))
            return _means(list(results), len(seeds))

        if state is not None:
            x, step = dict(state["x"]), dict(state["step"])
            best = (float(state["score"]), float(state["passes"]))
        else:
            best = pair([x])[0]
            note(kind="state", x=x, step=step, score=best[0], passes=best[1], seeds=list(req.seeds),
                 objective=req.objective, fixed=fixed)
        _write_best(req.out, x, best, req, fixed)
        moves = coordinate_search(pair, x, prior_bounds(), step, req.sweeps, best, req.objective)
        for key, point, steps, score, scores in moves:
            x, best = point, score
            note(kind="tried", key=key, scores=[s[0] for s in scores], passes=[s[1] for s in scores])
            note(kind="state", x=x, step=steps, score=best[0], passes=best[1], seeds=list(req.seeds),
                 objective=req.objective, fixed=fixed)
            _write_best(req.out, x, best, req, fixed)
            if not req.quiet:
                sys.stderr.write(f"{key:<52} score {best[0]:7.2f}  rows passing {best[1]:5.1f}  "
                                 f"({time.monotonic() - start:,.0f} s)\n")
    return x, best

