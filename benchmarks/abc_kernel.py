"""How evenly ABC-SMC's importance weights stay spread with ``calibrate``'s perturbation kernel and with
pyabc's default, on a toy problem the size of the calibration: 13 parameters, flat priors on [0, 1],
a population of 100, a Gaussian observation of each parameter with standard deviations from 0.02 to 0.3
(some parameters well identified, some not), the distance a mean of squared standardised differences.

Run: ``.venv/bin/python benchmarks/abc_kernel.py [--generations 6] [--repeats 3]`` (about seven minutes of
one core).
For each kernel and repeat it prints the effective sample size of every generation (Kish; the population
when weights are even, 1 when one particle carries them), the model runs used, the last epsilon, the
posterior mean's error in units of each parameter's observation noise, and that error in units of the
posterior's own standard deviation (near or below 1 when the posterior's spread is honest).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyabc

from metastasis.calibration import calibrate

DIMENSION = 13
POPULATION = 100
NOISE_SD = np.geomspace(0.02, 0.3, DIMENSION)
TRUTH = np.random.default_rng(0).uniform(0.2, 0.8, DIMENSION)
NAMES = [f"p{i}" for i in range(DIMENSION)]


def model(parameters: dict[str, float]) -> dict[str, np.ndarray]:
    theta = np.array([parameters[n] for n in NAMES])
    return {"x": theta + np.random.normal(0.0, NOISE_SD)}


def distance(x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> float:
    return float(np.mean(((x["x"] - y["x"]) / NOISE_SD) ** 2))


def one_run(kernel: Callable[[], Any], generations: int, seed: int) -> dict[str, Any]:
    np.random.seed(seed)
    prior = pyabc.Distribution(**{n: pyabc.RV("uniform", 0, 1) for n in NAMES})
    abc = pyabc.ABCSMC(model, prior, distance, population_size=POPULATION, transitions=kernel(),
                       sampler=pyabc.SingleCoreSampler())
    with tempfile.TemporaryDirectory() as tmp:
        history = abc.new(f"sqlite:///{Path(tmp) / 'history.db'}", {"x": TRUTH})
        history = abc.run(max_nr_populations=generations)
        populations = history.get_all_populations()
        ess = [calibrate.effective_sample_size(np.asarray(history.get_distribution(t=t)[1]))
               for t in range(history.max_t + 1)]
        frame, weights = history.get_distribution(t=history.max_t)
    w = np.asarray(weights)
    x = frame[NAMES].to_numpy()
    mean = np.average(x, axis=0, weights=w)
    sd = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
    return {
        "ess": [round(e, 1) for e in ess],
        "model_runs": int(populations["samples"].iloc[1:].sum()),
        "last_epsilon": round(float(populations["epsilon"].iloc[-1]), 2),
        "error_in_noise_sd": round(float(np.mean(np.abs(mean - TRUTH) / NOISE_SD)), 2),
        "error_in_posterior_sd": round(float(np.mean(np.abs(mean - TRUTH) / np.maximum(sd, 1e-12))), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("ABC").setLevel(logging.WARNING)
    logging.getLogger("Sampler").setLevel(logging.WARNING)
    kernels: dict[str, Callable[[], Any]] = {
        "calibrate (twice the weighted covariance)": calibrate.transition,
        "pyabc default (Silverman)": pyabc.MultivariateNormalTransition,
    }
    for label, kernel in kernels.items():
        print(label)
        for seed in range(args.repeats):
            print(f"  seed {seed}: {one_run(kernel, args.generations, seed)}", flush=True)


if __name__ == "__main__":
    main()
