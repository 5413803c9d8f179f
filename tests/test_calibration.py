"""``metastasis calibrate``: priors from the registry, the distance, the chosen particle, and a
two-generation ABC-SMC smoke run on a tiny population that writes its outputs and resumes."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metastasis.calibration import calibrate as cal
from metastasis.cli import main
from metastasis.parameters import CALIBRATED, REGISTRY, resolve


def test_priors_come_from_the_registry_prior_field() -> None:
    bounds = cal.prior_bounds()
    assert len(bounds) == len(CALIBRATED) <= 13
    for name in CALIBRATED:
        family, low, high = REGISTRY[name].prior or ("", 0.0, 0.0)
        key = cal.sampling_key(name)
        if family == "loguniform":
            assert key == "log10:" + name
            assert bounds[key] == pytest.approx((math.log10(low), math.log10(high)))
        else:
            assert key == name and bounds[key] == (low, high)
        # the natural value of each bound is the prior's bound, inside the allowed range
        lo, hi = (cal.natural({key: b})[name] for b in bounds[key])
        assert lo == pytest.approx(low) and hi == pytest.approx(high)
        assert REGISTRY[name].low <= lo <= hi <= REGISTRY[name].high


def test_distance_is_mean_squared_standardised_difference_with_a_cap() -> None:
    d = cal.TargetDistance({"a": 2.0, "b": 10.0, "c": 1.0})
    observed = {"a": 5.0, "b": 50.0, "c": 1.0}
    assert d({"a": 7.0, "b": 30.0, "c": 1.0}, observed) == pytest.approx((1.0 + 4.0 + 0.0) / 3)
    assert d({"a": 5.0, "b": 50.0, "c": math.nan}, observed) == pytest.approx(cal.TERM_CAP / 3)
    assert d({"a": 5.0, "b": 50.0}, observed) == pytest.approx(cal.TERM_CAP / 3)
    assert d({"a": 1e6, "b": 50.0, "c": 1.0}, observed) == pytest.approx(cal.TERM_CAP / 3)


def test_chosen_particle_is_the_one_nearest_the_weighted_median() -> None:
    keys = list(cal.prior_bounds())
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({k: rng.uniform(*cal.prior_bounds()[k], 9) for k in keys})
    mid = {k: float(np.mean(cal.prior_bounds()[k])) for k in keys}
    frame.loc[4, keys] = [mid[k] for k in keys]
    # weights concentrated on row 4 put every weighted median there
    frame["weight"] = [0.01] * 4 + [0.92] + [0.01] * 4
    assert cal.choose(frame).name == 4


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[cal.CalibrationRequest, pd.DataFrame]:
    """Two generations of four particles; one setting (the default population) over one simulated year."""
    out = tmp_path_factory.mktemp("calibration") / "run"
    req = cal.CalibrationRequest(out=out, population=4, generations=2, patients=200, workers=1, quiet=True,
                                 targets=("metastasis_at_diagnosis", "primary_growth"), gbsg2=False,
                                 scenario_overrides=("horizon_years=1",))
    return req, cal.run(req)


def test_smoke_run_writes_history_posterior_and_chosen_set(smoke: tuple[cal.CalibrationRequest, pd.DataFrame]) -> None:
    req, posterior = smoke
    assert {p.name for p in req.out.iterdir()} >= {"history.db", "posterior.parquet", "chosen.toml", "run.json"}
    written = pd.read_parquet(req.out / "posterior.parquet")
    assert len(written) == req.population
    assert list(written.columns[:len(CALIBRATED)]) == list(CALIBRATED)
    assert written["weight"].sum() == pytest.approx(1.0)
    assert (written["generation"] == 1).all()
    for name in CALIBRATED:
        _, low, high = REGISTRY[name].prior or ("", 0.0, 0.0)
        assert written[name].between(low * (1 - 1e-9), high * (1 + 1e-9)).all()
    chosen = tomllib.loads((req.out / "chosen.toml").read_text())
    values = chosen["parameters"]
    assert list(values) == list(CALIBRATED)
    resolve(values)  # a valid [parameters] table
    assert any(np.allclose([row[n] for n in CALIBRATED], [values[n] for n in CALIBRATED], rtol=1e-12)
               for _, row in written.iterrows())
    assert chosen["provenance"]["generations"] == 2 and chosen["provenance"]["population"] == 4
    assert json.loads((req.out / "run.json").read_text())["calibrated"] == list(CALIBRATED)
    assert posterior.shape == written.shape


def test_smoke_run_resumes_for_one_more_generation(smoke: tuple[cal.CalibrationRequest, pd.DataFrame],
                                                  capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import pyabc

    req, _ = smoke
    # a resumed run may change the population: the new generation has the new size
    more = cal.run(dataclasses.replace(req, generations=3, resume=True, quiet=False, population=5))
    assert (more["generation"] == 2).all() and len(more) == 5
    # the generation's line goes to stderr even when it is not a terminal (a background run's log)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "generation 3/3" in lines[0] and "accepted 5/" in lines[0], lines
    assert "effective_sample_size = " in (req.out / "chosen.toml").read_text(encoding="utf-8")
    history = pyabc.History(f"sqlite:///{req.out / 'history.db'}", _id=1)
    assert history.max_t == 2
    pops = history.get_all_populations()
    eps = pops.loc[pops["t"] >= 0, "epsilon"].to_numpy()
    # each epsilon is the weighted median of the previous generation's accepted distances, all below the
    # previous epsilon: it falls strictly (an epsilon repeated would be a stale calibration sample)
    assert len(eps) == 3 and np.all(np.diff(eps) < 0)
    for t in (1, 2):
        d = history.get_weighted_distances(t=t - 1).sort_values("distance")
        w = d["w"].to_numpy() / d["w"].sum()
        median = np.interp(0.5, np.cumsum(w) - w / 2, d["distance"].to_numpy())  # pyabc's weighted median
        assert eps[t] == pytest.approx(median, rel=1e-9)
    with pytest.raises(cal.InputError, match="holds a calibration"):
        cal.run(req)
    with pytest.raises(cal.InputError, match="--patients and --seed"):
        cal.run(dataclasses.replace(req, patients=300, resume=True))
    # a run started with another cap of the distance's terms (or before the cap was recorded) stays as it is
    other = tmp_path / "other-cap"
    shutil.copytree(req.out, other)
    settings = json.loads((other / "run.json").read_text())
    assert settings["term_cap"] == cal.TERM_CAP
    del settings["term_cap"]
    (other / "run.json").write_text(json.dumps(settings))
    with pytest.raises(cal.InputError, match="caps each row's distance at 100, this version at 4"):
        cal.run(dataclasses.replace(req, out=other, generations=4, resume=True))


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--population", "1"], "--population"),
        (["--generations", "0"], "--generations"),
        (["--workers", "0"], "--workers"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
        (["--resume"], "--resume"),
    ],
)
def test_calibrate_bad_input_is_one_line(args: list[str], field: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--out", str(tmp_path / "c"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {field}: "), err


def test_generation_line() -> None:
    line = cal.generation_line(1, 4, 0.8123, 200, 800, 65.2, 37.4)
    assert "generation 2/4" in line and "epsilon 0.8123" in line and "accepted 200/800 (25%)" in line
    assert "effective sample size 37" in line and line.startswith("[##########----------]")


@pytest.mark.parametrize(("workers", "quiet", "terminal", "shown"), [
    (1, False, True, True), (2, False, True, True), (2, True, True, False), (2, False, False, False),
])
def test_progress_within_a_generation_on_a_terminal_only(workers: int, quiet: bool, terminal: bool, shown: bool,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: terminal)
    sampler = cal._sampler(cal.CalibrationRequest(tmp_path, workers=workers, quiet=quiet), None)
    assert sampler.show_progress is shown


def test_perturbation_kernel_has_twice_the_weighted_covariance() -> None:
    # Beaumont et al. 2009: the kernel's covariance is 2 x the weighted covariance of the particles, for
    # any number of particles (pyabc's default would shrink it by a factor depending on their effective number)
    rng = np.random.default_rng(3)
    particles = pd.DataFrame(rng.normal(size=(50, 4)) @ rng.normal(size=(4, 4)), columns=list("abcd"))
    weights = rng.uniform(0.1, 1.0, 50)
    weights /= weights.sum()
    kernel = cal.transition()
    kernel.fit(particles, weights)
    mean = weights @ particles.to_numpy()
    centred = particles.to_numpy() - mean
    # numpy's weighted covariance with aweights: sum w (x - m)(x - m)' / (1 - sum w^2) for normalised w
    expected = (centred * weights[:, None]).T @ centred / (1.0 - np.sum(weights ** 2))
    np.testing.assert_allclose(kernel.cov, 2.0 * expected, rtol=1e-12)


def test_effective_sample_size_of_weights() -> None:
    assert cal.effective_sample_size(np.full(40, 0.3)) == pytest.approx(40.0)
    assert cal.effective_sample_size(np.array([0.0, 2.0, 0.0])) == pytest.approx(1.0)
    # two groups of particles, k of weight a and m of weight b: (k a + m b)^2 / (k a^2 + m b^2)
    w = np.r_[np.full(10, 3.0), np.full(30, 1.0)]
    assert cal.effective_sample_size(w) == pytest.approx((30.0 + 30.0) ** 2 / (90.0 + 30.0))


def test_posterior_draws_without_a_shipped_sample_is_an_input_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from metastasis.calibration import posterior

    monkeypatch.setattr(posterior, "sample_path", lambda: None)
    assert main(["simulate", "default", "--posterior-draws", "2", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --posterior-draws: no posterior sample is shipped"), err
    assert "metastasis calibrate" in err[0]


def test_posterior_draws_run_each_particle_and_summarise_with_intervals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from metastasis.calibration import posterior

    sample = pd.DataFrame({name: [REGISTRY[name].default * f for f in (0.9, 1.0, 1.1)] for name in CALIBRATED})
    sample["aggressiveness.beta_seeding"] = [1.2, 1.5, 1.8]
    sample["weight"] = [0.2, 0.5, 0.3]
    sample.to_parquet(tmp_path / "posterior.parquet")
    monkeypatch.setattr(posterior, "sample_path", lambda: tmp_path / "posterior.parquet")
    out = tmp_path / "draws"
    args = ["simulate", "default", "--patients", "100", "--set", "horizon_years=1", "--posterior-draws", "3",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["draws"] == ["draw-000", "draw-001", "draw-002"] and info["posterior_draws"] == 3
    used = sorted(json.loads((out / d / "run.json").read_text())["parameters"]["aggressiveness.beta_seeding"]
                  for d in info["draws"])
    assert used == [1.2, 1.5, 1.8]  # every particle once: drawn without replacement
    capsys.readouterr()
    assert main(["summary", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["posterior_draws"] == 3
    share = s["share_clinical_stage"]["I"]
    assert set(share) == {"median", "low", "high"} and share["low"] <= share["median"] <= share["high"]
    assert s["patients"] == {"median": 100.0, "low": 100.0, "high": 100.0}
    assert main(args) == 2  # a finished DIR is protected
    assert main([*args, "--resume"]) == 0  # nothing left to do


def test_posterior_draws_from_a_users_own_sample_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from metastasis.calibration import posterior

    monkeypatch.setattr(posterior, "sample_path", lambda: None)  # this version ships none
    sample = pd.DataFrame({name: [REGISTRY[name].default] * 2 for name in CALIBRATED})
    sample["dissemination.mu"] = [1e-4, 3e-4]
    sample["weight"] = [1.0, 1.0]
    own = tmp_path / "calibration" / "posterior.parquet"
    own.parent.mkdir()
    sample.to_parquet(own)
    out = tmp_path / "draws"
    base = ["simulate", "default", "--patients", "50", "--set", "horizon_years=1", "--out", str(out), "--quiet"]
    assert main([*base, "--posterior-draws", "2", "--posterior", str(own)]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["posterior"] == str(own)
    used = sorted(json.loads((out / d / "run.json").read_text())["parameters"]["dissemination.mu"]
                  for d in info["draws"])
    assert used == [1e-4, 3e-4]
    capsys.readouterr()
    bad = tmp_path / "bad.parquet"
    sample.drop(columns=["weight"]).to_parquet(bad)
    for args, message in (
            (["--posterior", str(own)], "error: --posterior: needs --posterior-draws K"),
            (["--posterior-draws", "1", "--posterior", str(tmp_path / "none.parquet")],
             "error: --posterior: cannot read a posterior sample from"),
            (["--posterior-draws", "1", "--posterior", str(bad)], "error: --posterior: the posterior sample"),
            (["--posterior-draws", "3", "--posterior", str(own)],
             "error: --posterior-draws: must be at most the 2 particles")):
        assert main([*base, "--force", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(message), err


def test_calibrate_command_passes_its_options_and_reports_the_outputs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[cal.CalibrationRequest] = []

    def fake_run(req: cal.CalibrationRequest) -> pd.DataFrame:
        seen.append(req)
        return pd.DataFrame({"weight": [0.5, 0.5], "generation": [3, 3]})

    monkeypatch.setattr(cal, "run", fake_run)
    args = ["calibrate", "--population", "50", "--generations", "4", "--patients", "500", "--scheduler",
            "tcp://127.0.0.1:8786", "--out", str(tmp_path / "c"), "--resume", "--seed", "7"]
    assert main(args) == 0
    req = seen[0]
    assert (req.population, req.generations, req.patients, req.scheduler, req.resume, req.seed, req.workers) == \
        (50, 4, 500, "tcp://127.0.0.1:8786", True, 7, None)
    assert req.targets is None and req.gbsg2  # the command always fits every target
    out = capsys.readouterr().out
    assert "posterior.parquet" in out and "chosen.toml" in out and "generation 4" in out
