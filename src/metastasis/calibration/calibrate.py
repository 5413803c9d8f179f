"""``metastasis calibrate``: ABC-SMC (pyabc) fit of the calibrated parameters to the targets.

Parameters: the registry's ``CALIBRATED`` names, each with its own ``prior`` (not its allowed range):
``uniform(low, high)`` is sampled as is, ``loguniform(low, high)`` as ``log10`` of the value, uniform
between the log10 of its bounds (key ``log10:<name>`` in the history), so that the perturbation kernel
works on the scale the prior is flat on. Model: every target row simulated with ``--patients`` as base
count (common random numbers: the same women for every particle). Distance: the mean over rows of the
squared standardised difference ``((simulated - published) / scale)^2``, ``scale`` the tolerance of the
row without its simulation error (:func:`.validate.distance_scale`), each term capped at
:data:`TERM_CAP` (4: a row twice its tolerance away or further, or one that cannot be computed at a
small patient count, NaN, counts as missed whatever its distance). The cap keeps the few rows the model
cannot meet from steering the fit: with a cap of 100 they did (generation 3 of a run on 2026-11-28,
200 particles: the particle of least distance met the timing rows but passed 43 of the 70 rows at
20,000 patients, the defaults 58), and across that generation the distance correlated with the number
of rows outside their tolerance at 0.40 with a cap of 100, 0.68 with 9 and 0.86 with 4.

Perturbation kernel: a multivariate normal whose covariance is twice the weighted covariance of the
previous generation (Beaumont, Cornuet, Marin & Robert, Biometrika 2009;96:983), not pyabc's default
(the covariance shrunk by Silverman's rule, applied to the effective sample size). With 13 parameters
and 100 particles the default let one or two particles carry most of the weight (effective sample size
2.1 and 4.7 in the first generations of a run on 2026-11-28); on a 13-parameter toy problem it fell to
1-20 of 100 where this kernel kept 40-75, at about 1.8 times the model runs per generation.

``--out DIR`` holds ``history.db`` (pyabc's SQLite history; ``--resume`` continues it), ``run.json``
(the settings), ``posterior.parquet`` (the last generation: natural-scale values, ``weight``,
``distance``) and ``chosen.toml`` (the particle nearest the weighted posterior median, with provenance),
all rewritten after every generation.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metastasis import __version__
from metastasis.errors import InputError
from metastasis.parameters import CALIBRATED, REGISTRY

#: Largest contribution of one row to the distance (a NaN statistic counts this much); recorded in
#: ``run.json`` (100 before 2026-11-28, the value for a run.json without it): a run continues only
#: with the distance it started with.
TERM_CAP = 4.0
_TERM_CAP_BEFORE_RECORDED = 100.0
LOG_PREFIX = "log10:"


@dataclass(frozen=True)
class CalibrationRequest:
    """What ``metastasis calibrate`` was asked to do."""

    out: Path
    population: int = 200
    generations: int = 10
    patients: int = 2_000
    workers: int | None = None
    scheduler: str | None = None
    resume: bool = False
    seed: int = 1
    quiet: bool = False
    #: a subset of the target tables (default all), with or without the GBSG2 rows, and ``--set`` items
    #: applied to every simulated setting: for tests and quick experiments
    targets: tuple[str, ...] | None = None
    gbsg2: bool = True
    scenario_overrides: tuple[str, ...] = ()


def sampling_key(name: str) -> str:
    """The key of a calibrated parameter in the ABC history (``log10:`` for log-uniform priors)."""
    prior = REGISTRY[name].prior
    assert prior is not None
    return LOG_PREFIX + name if prior[0] == "loguniform" else name


def prior_bounds() -> dict[str, tuple[float, float]]:
    """Sampling key -> (low, high) of its uniform prior on the sampling scale."""
    out = {}
    for name in CALIBRATED:
        prior = REGISTRY[name].prior
        assert prior is not None
        family, low, high = prior
        if family == "loguniform":
            out[sampling_key(name)] = (math.log10(low), math.log10(high))
        elif family == "uniform":
            out[sampling_key(name)] = (low, high)
        else:
            raise ValueError(f"prior family {family!r} of {name} is not supported")
    return out


def natural(particle: dict[str, float]) -> dict[str, float]:
    """Sampling-scale particle -> registry names and values."""
    return {k.removeprefix(LOG_PREFIX): 10.0 ** float(v) if k.startswith(LOG_PREFIX) else float(v)
            for k, v in particle.items()}


def statistic_key(target: str, row: str) -> str:
    return f"{target}|{row}"


class TargetModel:
    """The ABC model: a particle (sampling scale) -> simulated value of every target row."""

    def __init__(self, req: CalibrationRequest) -> None:
        self.patients, self.seed, self.targets = req.patients, req.seed, req.targets
        self.gbsg2, self.scenario_overrides = req.gbsg2, req.scenario_overrides

    def emulate(self, particle: dict[str, float] | None, patients: int) -> pd.DataFrame:
        from metastasis.calibration.targets import emulate

        return emulate(None if particle is None else natural(dict(particle)), patients, self.gbsg2, self.targets,
                       seed=self.seed, scenario_overrides=self.scenario_overrides)

    def __call__(self, particle: dict[str, float]) -> dict[str, float]:
        try:
            table = self.emulate(particle, self.patients)
        except (InputError, ValueError, ZeroDivisionError):
            return {}
        return {statistic_key(t, r): float(v) for t, r, v in zip(table["target"], table["row"], table["simulated"],
                                                                   strict=True)}


class TargetDistance:
    """Mean squared standardised difference over the target rows (see the module docstring)."""

    def __init__(self, scales: dict[str, float]) -> None:
        self.scales = scales
        self.__name__ = "TargetDistance"

    def __call__(self, x: dict[str, float], x_0: dict[str, float]) -> float:
        total = 0.0
        for key, scale in self.scales.items():
            sim, pub = x.get(key, math.nan), float(x_0[key])
            term = ((float(sim) - pub) / scale) ** 2 if sim is not None and math.isfinite(float(sim)) else TERM_CAP
            total += min(term, TERM_CAP)
        return total / len(self.scales)


def observed_and_scales(model: TargetModel) -> tuple[dict[str, float], dict[str, float]]:
    """Published value and distance scale of every target row (one tiny simulation gives the rows)."""
    from metastasis.calibration.validate import distance_scale

    table = model.emulate(None, 100)
    observed, scales = {}, {}
    for r in table.itertuples():
        key = statistic_key(str(r.target), str(r.row))
        observed[key] = float(r.published)
        scales[key] = distance_scale(str(r.kind), float(r.published), float(r.low), float(r.high))
    return observed, scales


def choose(posterior: pd.DataFrame) -> pd.Series:
    """The particle nearest the weighted posterior median: distance in units of each prior's width on the
    sampling scale. ``posterior`` has sampling-scale columns and ``weight``."""
    bounds = prior_bounds()
    w = posterior["weight"].to_numpy()
    d2 = np.zeros(len(posterior))
    for key, (low, high) in bounds.items():
        values = posterior[key].to_numpy()
        order = np.argsort(values)
        cum = np.cumsum(w[order]) / w.sum()
        median = values[order][np.searchsorted(cum, 0.5)]
        d2 += ((values - median) / (high - low)) ** 2
    return posterior.iloc[int(np.argmin(d2))]


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(float(v)) if isinstance(v, float) else str(v)
    return json.dumps(str(v))


def write_outputs(out: Path, history: Any, settings: dict[str, Any]) -> pd.DataFrame:
    """``posterior.parquet`` and ``chosen.toml`` from the last generation of ``history``."""
    frame, w = history.get_distribution(m=0, t=history.max_t)
    frame = frame.reset_index(drop=True)
    frame["weight"] = np.asarray(w, dtype=float)
    distances = history.get_weighted_distances(t=history.max_t)
    frame["distance"] = distances["distance"].to_numpy() if len(distances) == len(frame) else math.nan
    posterior = pd.DataFrame({name: [natural({sampling_key(name): v})[name] for v in frame[sampling_key(name)]]
                              for name in CALIBRATED})
    posterior["weight"], posterior["distance"] = frame["weight"], frame["distance"]
    posterior["generation"] = int(history.max_t)
    tmp = out / ".posterior.parquet.tmp"
    posterior.to_parquet(tmp, index=False)
    os.replace(tmp, out / "posterior.parquet")
    chosen = choose(frame)
    values = natural({k: float(chosen[k]) for k in prior_bounds()})
    populations = history.get_all_populations()
    lines = ["# The particle of the last ABC-SMC generation nearest the weighted posterior median.",
             "# Use it as a scenario's [parameters] table.", "[parameters]"]
    lines += [f'"{name}" = {values[name]!r}' for name in CALIBRATED]
    lines += ["", "[provenance]",
              'targets = "data/targets/*.csv and the GBSG2 cohort of lifelines (metastasis validate)"',
              f"date = {_toml_value(datetime.now(UTC).isoformat(timespec='seconds'))}",
              f"package_version = {_toml_value(__version__)}",
              f"generations = {int(history.max_t) + 1}",
              f"epsilon = {float(populations['epsilon'].iloc[-1])!r}",
              f"simulations = {int(populations['samples'].sum())}",
              f"effective_sample_size = {effective_sample_size(frame['weight'].to_numpy())!r}"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in settings.items() if v is not None]
    tmp = out / ".chosen.toml.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out / "chosen.toml")
    return posterior


def _client(req: CalibrationRequest) -> Any:
    """A client of the Dask cluster at ``--scheduler`` (None without one)."""
    if req.scheduler is None:
        return None
    from distributed import Client

    try:
        return Client(req.scheduler, timeout=30)
    except (OSError, ValueError, TypeError) as err:
        raise InputError("--scheduler", f"cannot connect to {req.scheduler!r}: {err}") from None


def _sampler(req: CalibrationRequest, client: Any) -> Any:
    """pyabc's sampler for the run. Local samplers show a bar of the particles accepted so far within a
    generation (a generation takes minutes) when stdout is a terminal and not ``quiet``; a log gets the
    one line per generation only."""
    from pyabc.sampler import DaskDistributedSampler, MulticoreEvalParallelSampler, SingleCoreSampler

    if client is not None:
        return DaskDistributedSampler(dask_client=client)
    workers = req.workers if req.workers is not None else (os.cpu_count() or 1)
    sampler = SingleCoreSampler() if workers == 1 else MulticoreEvalParallelSampler(n_procs=workers)
    sampler.show_progress = not req.quiet and sys.stdout.isatty()
    return sampler


def twice_the_covariance(effective_sample_size: float, dimension: int) -> float:
    """Bandwidth factor of the perturbation kernel: sqrt(2), so that pyabc's multivariate normal kernel
    has twice the weighted covariance of the previous generation (Beaumont et al. 2009), whatever the
    number of particles and parameters. A function of pyabc's bandwidth-selector form."""
    return math.sqrt(2.0)


def transition() -> Any:
    """The perturbation kernel of every generation (see the module's docstring)."""
    from pyabc import MultivariateNormalTransition

    return MultivariateNormalTransition(bandwidth_selector=twice_the_covariance)


def _check(req: CalibrationRequest) -> None:
    for option, value, least in (("--population", req.population, 2), ("--generations", req.generations, 1),
                                 ("--patients", req.patients, 100)):
        if value < least:
            raise InputError(option, f"must be at least {least} (got {value})")
    if req.workers is not None and req.workers < 1:
        raise InputError("--workers", f"must be at least 1 (got {req.workers})")
    if req.workers is not None and req.scheduler is not None:
        raise InputError("--workers", "give --workers K for local processes or --scheduler ADDRESS, not both")
    if req.out.exists() and not req.out.is_dir():
        raise InputError("--out", f"{req.out} exists and is not a directory")


def run(req: CalibrationRequest) -> pd.DataFrame:
    """Run (or continue) the calibration; returns the posterior sample of the last generation."""
    _check(req)
    db_path = req.out / "history.db"
    settings_path = req.out / "run.json"
    workers = req.workers if req.workers is not None else (os.cpu_count() or 1)
    sampler = f"dask {req.scheduler}" if req.scheduler else "single core" if workers == 1 else f"multicore {workers}"
    settings = {"population": req.population, "patients": req.patients, "seed": req.seed, "sampler": sampler}
    if db_path.exists() and not req.resume:
        raise InputError("--out", f"{req.out} holds a calibration (continue it with --resume, or give another --out)")
    if req.resume:
        if not db_path.exists() or not settings_path.exists():
            raise InputError("--resume", f"{req.out} holds no calibration to continue")
        previous = json.loads(settings_path.read_text(encoding="utf-8"))
        if (previous["patients"], previous["seed"]) != (req.patients, req.seed):
            raise InputError("--resume", f"--patients and --seed must be those of the run in {req.out} "
                                         f"({previous['patients']} and {previous['seed']})")
        cap = float(previous.get("term_cap", _TERM_CAP_BEFORE_RECORDED))
        if cap != TERM_CAP:
            raise InputError("--resume", f"the run in {req.out} caps each row's distance at {cap:g}, this version "
                                         f"at {TERM_CAP:g}: start a new run (another --out)")
    import logging

    import pyabc

    logging.getLogger("ABC").setLevel(logging.WARNING)
    model = TargetModel(req)
    observed, scales = observed_and_scales(model)
    prior = pyabc.Distribution(**{k: pyabc.RV("uniform", lo, hi - lo) for k, (lo, hi) in prior_bounds().items()})
    db = f"sqlite:///{db_path.resolve()}"
    req.out.mkdir(parents=True, exist_ok=True)
    run_id = int(previous["run_id"]) if req.resume else None
    progress = not req.quiet  # one line per generation, on a terminal or in a background run's log
    posterior = pd.DataFrame()
    client = _client(req)
    try:
        while True:
            # A fresh ABCSMC per generation, continued from the history (pyabc's documented way to resume):
            # one ABCSMC object run repeatedly would keep its first calibration sample and so its first epsilon.
            abc = pyabc.ABCSMC(model, prior, TargetDistance(scales), population_size=req.population,
                               transitions=transition(), sampler=_sampler(req, client))
            if run_id is None:
                history = abc.new(db, observed)
                run_id = int(history.id)
                _write_json(settings_path, {**settings, "run_id": run_id, "started": _now(),
                                            "package_version": __version__, "calibrated": list(CALIBRATED),
                                            "term_cap": TERM_CAP})
            else:
                history = abc.load(db, run_id, observed)
            if history.max_t + 1 >= req.generations:
                break
            np.random.seed([req.seed, history.max_t + 1])
            start = time.monotonic()
            abc.run(max_nr_populations=1)
            last = history.get_all_populations().iloc[-1]
            posterior = write_outputs(req.out, history, settings)
            if progress:
                print(generation_line(int(last["t"]), req.generations, float(last["epsilon"]), req.population,
                                      int(last["samples"]), time.monotonic() - start,
                                      effective_sample_size(posterior["weight"].to_numpy())),
                      file=sys.stderr, flush=True)
        if posterior.empty and history.max_t >= 0:
            posterior = write_outputs(req.out, history, settings)
    finally:
        if client is not None:
            client.close()  # the connection only: the cluster is the user's
    return posterior


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of importance weights, ``(sum w)^2 / sum w^2``: the population size
    for equal weights, 1 when one particle carries all the weight (a posterior not yet to be trusted)."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / (w**2).sum()) if w.size and (w**2).sum() > 0 else 0.0


def generation_line(t: int, generations: int, epsilon: float, accepted: int, samples: int, seconds: float,
                    ess: float) -> str:
    """One progress line per finished generation (``ess``: effective sample size of its weights)."""
    done = t + 1
    bar = "#" * round(20 * done / generations) + "-" * (20 - round(20 * done / generations))
    rate = accepted / samples if samples else 0.0
    return (f"[{bar}] generation {done}/{generations}  epsilon {epsilon:.4g}  accepted {accepted}/{samples} "
            f"({rate:.0%})  effective sample size {ess:.0f}  {seconds:,.0f} s")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)

